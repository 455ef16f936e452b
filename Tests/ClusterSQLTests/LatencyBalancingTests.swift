import ClusterSQL
import FaultInjection
import Foundation
import MariaDBBackend
import SQLCore
import SQLTestSupport
import TestServers
import Testing

/// How traffic follows latency. These tests compare latencies of a few
/// milliseconds, which the server start-ups of the other suites would drown on
/// 2 cores, so `scripts/run-tests.sh` runs this suite in a pass of its own,
/// after the rest (every suite name containing "LatencyBalancing").
@Suite("LatencyBalancing: a slow node gets little traffic", .serialized, .timeLimit(.minutes(4)))
struct LatencyBalancingTests {
    @Test("latency: a node 50 ms slower than the others gets at most 10% of the opens")
    func slowNodeGetsLittle() async throws {
        let local = try LocalCluster(strategy: .latency)
        local.drivers["n2"]!.faults = .slow(.milliseconds(50))
        for _ in 0..<300 {
            let connection = try await local.cluster.connect(to: "")
            _ = try await connection.query("SELECT 1")
            await connection.close()
        }
        let opens = local.cluster.statistics().nodes.map(\.connections)
        #expect(opens.reduce(0, +) >= 300)  // a hedge that also succeeded counts (and was closed)
        #expect(local.node("n2").connections * 10 <= opens.reduce(0, +), "opens per node: \(opens)")
        #expect(local.node("n1").connections > 60 && local.node("n3").connections > 60, "opens per node: \(opens)")
    }

    @Test("the delay proxy adds its delay to each round trip, can change it live, and stops", Deployment.ownServersOnly)
    func delayProxy() async throws {
        let node = try await GaleraCluster.shared().nodes[0]
        let proxy = try await DelayProxy.start(upstreamPort: node.port, delay: .milliseconds(30))
        let connection = try await MariaDBDriver().connect(to: "mysql://test:test@127.0.0.1:\(proxy.port)/test?timeout=5s")
        func roundTrip() async throws -> Duration {
            let started = ContinuousClock.now
            #expect(try await connection.query("SELECT 1 + 1")[0][0] == .integer(2))
            return ContinuousClock.now - started
        }
        #expect(try await roundTrip() >= .milliseconds(30))
        proxy.delay = .zero
        _ = try await roundTrip()  // a chunk queued before the change may still be held
        #expect(try await roundTrip() < .milliseconds(30))
        await proxy.stop()
        await expectSQLError(.connectionLost) { try await connection.query("SELECT 1") }
        await connection.close()
    }

    @Test("a delay proxy adding 5 ms to one of three Galera nodes: it receives at most 10% of the queries", Deployment.ownServersOnly)
    func fiveMillisecondsOnRealNodes() async throws {
        let servers = try await GaleraCluster.shared()
        var proxies: [DelayProxy] = []
        for (index, node) in servers.nodes.enumerated() {
            // Every node is behind a proxy, so only the added delay differs.
            proxies.append(try await DelayProxy.start(upstreamPort: node.port, delay: index == 1 ? .milliseconds(5) : .zero))
        }
        let cluster = try makeCluster(
            "galera-latency",
            nodes: proxies.enumerated().map {
                Deployment.Node(name: "node-\($0.offset + 1)", dsn: "mysql://test:test@127.0.0.1:\($0.element.port)/test?timeout=2s")
            }, driver: MariaDBDriver(queryTimeout: .seconds(3)))
        let end = ContinuousClock.now + .seconds(6)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while ContinuousClock.now < end {
                            let connection = try await cluster.connect(to: "")
                            for _ in 0..<5 { _ = try await connection.query("SELECT 1") }
                            await connection.close()
                        }
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            for proxy in proxies { await proxy.stop() }
            throw error
        }
        for proxy in proxies { await proxy.stop() }
        let statements = cluster.statistics().nodes.map(\.statements)
        let total = statements.reduce(0, +)
        #expect(total > 500)
        #expect(statements[1] * 10 <= total, "statements per node: \(statements)")
    }
}

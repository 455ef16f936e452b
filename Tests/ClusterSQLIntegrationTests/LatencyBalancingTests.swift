import ClusterSQL
import FaultInjection
import Foundation
import MariaDBBackend
import SQLCore
import SQLTestSupport
import TestServers
import Testing

/// How traffic follows latency on real Galera nodes behind delay proxies. The
/// balancing logic itself is tested in virtual time (ClusterTimingTests); these
/// show that the latencies measured through a real driver steer the traffic.
/// The margins hold on a loaded machine: they run with the rest of the suite.
@Suite("LatencyBalancing: a slow node gets little traffic", .serialized, .timeLimit(.minutes(4)))
struct LatencyBalancingTests {
    @Test("the delay proxy adds its delay to each round trip, can change it live, and stops", Deployment.ownServersOnly)
    func delayProxy() async throws {
        // The shared cluster: not while a test that pauses its nodes runs (GaleraNodeTests).
        try await GaleraCluster.sharedGate.use {
            let node = try await GaleraCluster.shared().nodes[0]
            let proxy = try await DelayProxy.start(upstreamPort: node.port, delay: .milliseconds(250))
            let connection = try await MariaDBDriver().connect(to: "mysql://test:test@127.0.0.1:\(proxy.port)/test?timeout=5s")
            func roundTrip() async throws -> Duration {
                let started = ContinuousClock.now
                #expect(try await connection.query("SELECT 1 + 1")[0][0] == .integer(2))
                return ContinuousClock.now - started
            }
            #expect(try await roundTrip() >= .milliseconds(250))
            proxy.delay = .zero
            _ = try await roundTrip()  // a chunk queued before the change may still be held
            #expect(try await roundTrip() < .milliseconds(250))
            await proxy.stop()
            await expectSQLError(.connectionLost) { try await connection.query("SELECT 1") }
            await connection.close()
        }
    }

    @Test("a delay proxy adding 20 ms to one of three Galera nodes: it receives at most 10% of the queries", Deployment.ownServersOnly)
    func slowGaleraNodeGetsLittle() async throws {
        // The shared cluster: not while a test that pauses its nodes runs (GaleraNodeTests).
        try await GaleraCluster.sharedGate.use {
            let servers = try await GaleraCluster.shared()
            var proxies: [DelayProxy] = []
            for (index, node) in servers.nodes.enumerated() {
                // Every node is behind a proxy, so only the added delay differs.
                proxies.append(try await DelayProxy.start(upstreamPort: node.port, delay: index == 1 ? .milliseconds(20) : .zero))
            }
            let cluster = try makeCluster(
                "galera-latency",
                nodes: proxies.enumerated().map {
                    Deployment.Node(name: "node-\($0.offset + 1)", dsn: "mysql://test:test@127.0.0.1:\($0.element.port)/test?timeout=2s")
                }, driver: MariaDBDriver(queryTimeout: .seconds(3)))
            let end = ContinuousClock.now + .seconds(4)
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
}

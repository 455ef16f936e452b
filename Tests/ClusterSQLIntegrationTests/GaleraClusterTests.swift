import ClusterSQL
import ConnectionKit
import Foundation
import Logging
import MariaDBBackend
import SQLCore
import TestServers
import TestSupport
import Testing

/// ClusterDriver over a real three-node Galera cluster of its own (the tests kill and stop nodes).
@Suite("ClusterDriver over a Galera cluster", .serialized, .timeLimit(.minutes(6)), Deployment.ownServersOnly)
struct GaleraClusterTests {
    static let servers = StartedOnce<GaleraCluster> { try await GaleraCluster.start() }

    func makeCluster(_ servers: GaleraCluster, strategy: BalancingStrategy = .latency) throws -> ClusterDriver {
        let nodes = servers.nodes.enumerated().map { Deployment.Node(name: "node-\($0.offset + 1)", dsn: $0.element.dsn + "?timeout=2s") }
        return try ClusterSQLIntegrationTests.makeCluster(
            "galera", nodes: nodes, driver: MariaDBDriver(queryTimeout: .seconds(3)), strategy: strategy)
    }

    @Test("SIGKILL of a node during a read stream: every read outside a transaction succeeds; the node rejoins")
    func killDuringReads() async throws {
        let servers = try await Self.servers.value()
        let cluster = try makeCluster(servers, strategy: .roundRobin)
        try await whileRunning(cluster) {
            var configuration = DatabaseConfiguration(name: "reads")
            configuration.maxOpen = 6
            configuration.maxLifetime = .milliseconds(500)
            let database = Database(driver: cluster, dsn: "", configuration: configuration)
            let failures = Locked<[String]>([])
            let reads = Locked(0)
            let stop = Locked(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        while !stop.withLock({ $0 }) {
                            do {
                                // Marked safe to run twice: a read on the killed node moves to another.
                                _ = try await ClusterDriver.idempotent {
                                    try await database.query("SELECT COUNT(*) FROM information_schema.TABLES")
                                }
                                reads.withLock { $0 += 1 }
                            } catch {
                                failures.withLock { $0.append("\(error)") }
                            }
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(500))
                try await servers.nodes[1].kill()
                try await Task.sleep(for: .seconds(2))
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(3) })")
            #expect(reads.withLock { $0 } > 100)
            #expect(cluster.statistics().nodes.first { $0.name == "node-2" }?.state != .up)
            await database.close()
            try await servers.nodes[1].restart()
            try await servers.waitUntilSynced(size: 3)
            #expect(await eventually(within: .seconds(10)) { cluster.statistics().nodes.allSatisfy { $0.state == .up } })
        }
    }

    @Test("SIGSTOP of a node: opens stay fast, the node is ejected, and re-admitted after SIGCONT")
    func stoppedNode() async throws {
        let servers = try await Self.servers.value()
        let cluster = try makeCluster(servers)
        try await whileRunning(cluster) {
            func timeOpens(_ count: Int) async throws -> [Duration] {
                var times: [Duration] = []
                for _ in 0..<count {
                    let started = ContinuousClock.now
                    let connection = try await cluster.connect(to: "")
                    times.append(ContinuousClock.now - started)
                    await connection.close()
                }
                return times.sorted()
            }
            _ = try await timeOpens(10)
            let healthy = try await timeOpens(50)
            await servers.nodes[2].pause()
            defer { servers.nodes[2].resume() }
            let stopped = try await timeOpens(50)
            // The median stays at the healthy figure; at most the first opens wait a hedge delay.
            #expect(stopped[25] < healthy[25] * 2 + .milliseconds(2), "healthy \(healthy), one stopped \(stopped)")
            #expect(stopped[45] < .milliseconds(50), "one stopped \(stopped)")
            #expect(await eventually(within: .seconds(5)) { cluster.statistics().nodes.first { $0.name == "node-3" }?.state != .up })
            servers.nodes[2].resume()
            #expect(await eventually(within: .seconds(15)) { cluster.statistics().nodes.first { $0.name == "node-3" }?.state == .up })
        }
    }
}

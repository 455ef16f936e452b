import ClusterSQL
import FaultInjection
import Foundation
import Metrics
import MetricsTestKit
import PostgresBackend
import SQLCore
import SQLTestSupport
import SQLiteBackend
import TestSupport
import Testing

@Suite("ClusterDriver: balancing, statistics and metrics", .timeLimit(.minutes(2)))
struct ClusterStatisticsTests {
    @Test("stats: the seed's names in JSON, per-node figures, no password anywhere")
    func statisticsJSON() async throws {
        let local = try LocalCluster(nodes: ["n1"])
        let closedPort = try LoopbackPorts.free()
        try local.cluster.addNode(
            name: "pg", driver: PostgresDriver(),
            dsn: "postgres://app:hunter2-secret@127.0.0.1:\(closedPort)/db?connect_timeout=2")
        let connection = try await local.cluster.connect(to: "")
        _ = try await connection.query("SELECT 1")
        await connection.close()
        // A cluster of the unreachable node alone: its failure is in the stats, its password is not.
        let only = ClusterDriver(configuration: .init(name: "pg-only"))
        try only.addNode(name: "pg", driver: PostgresDriver(), dsn: "postgres://app:hunter2-secret@127.0.0.1:\(closedPort)/db")
        let error = await expectSQLError(.allNodesFailed) { try await only.connect(to: "") }
        #expect(error.map { !"\($0)".contains("hunter2") } == true)
        let failed = String(decoding: try JSONEncoder().encode(only.statistics()), as: UTF8.self)
        #expect(!failed.contains("hunter2"))
        #expect(only.statistics().nodes[0].errors == 1 && only.statistics().nodes[0].lastErrorMessage != nil)
        let json = String(decoding: try JSONEncoder().encode(local.cluster.statistics()), as: UTF8.self)
        for key in [
            "FirstInstantiated", "Connections", "Errors", "LastSuccess", "LastErrorMessage", "LatencyAverageMs", "InFlight", "State",
            "Role", "ReplicationLagSeconds", "BytesBehind", "TransactionsBehind", "BehindByUnknown",
        ] {
            #expect(json.contains("\"\(key)\""), "missing \(key) in \(json)")
        }
        #expect(!json.contains("hunter2"))
        #expect(json.contains("***"))
        let n1 = local.node("n1")
        #expect(n1.connections == 1 && n1.statements >= 1 && n1.role == .primary && n1.state == .up)
        #expect(n1.latencyMilliseconds != nil && n1.lastSuccess != nil)
        let decoded = try JSONDecoder().decode(ClusterStatistics.self, from: Data(json.utf8))
        #expect(decoded.nodes.map(\.name) == ["n1", "pg"])
    }

    @Test("metrics: connections, statements, errors and up per node, with cluster and node dimensions")
    func metrics() async throws {
        let metrics = TestMetrics()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cluster = ClusterDriver(configuration: .init(name: "m"), metricsFactory: metrics)
        let driver = FaultInjectingDriver(wrapping: SQLiteDriver())
        try cluster.addNode(name: "a", driver: driver, dsn: folder.appendingPathComponent("a.sqlite").path)
        let connection = try await cluster.connect(to: "")
        _ = try await connection.query("SELECT 1")
        driver.faults = .dead
        _ = try? await connection.query("SELECT 1")
        await connection.close()
        let dimensions = [("cluster", "m"), ("node", "a")]
        #expect(try metrics.expectCounter("clustersql_node_connections_total", dimensions).lastValue == 1)
        #expect(try metrics.expectCounter("clustersql_node_statements_total", dimensions).totalValue >= 2)
        #expect(try metrics.expectCounter("clustersql_node_errors_total", dimensions).totalValue >= 1)
        #expect(try metrics.expectGauge("clustersql_node_up", dimensions).lastValue == 0)
    }
}

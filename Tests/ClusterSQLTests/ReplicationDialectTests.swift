import ClusterSQL
import FaultInjection
import Foundation
import SQLCore
import SQLiteBackend
import Testing

@testable import ClusterSQL

/// A cluster reads every node through its driver's `SQLReplicationDialect`, with no detector or
/// probe configured: the backends' own, a driver of the user's, and both behind a fault injector.
@Suite("Replication dialects: a driver that adopts SQLReplicationDialect gives its nodes' roles and lag")
struct ReplicationDialectTests {
    /// SQLite files that say what role and lag the test gives them.
    struct ScriptedReplicaDriver: SQLReplicationDialect {
        let role: NodeRole
        let lag: ReplicationLag?
        var name: String { "scripted" }
        func connect(to dsn: String) async throws(SQLError) -> any SQLConnection { try await SQLiteDriver().connect(to: dsn) }
        func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
            _ = try await connection.query("SELECT 1")  // the dialect's SQL runs on the node's connection
            return role
        }
        func readReplication(
            on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
        ) async throws(SQLError)
            -> ReplicationReading
        {
            ReplicationReading(position: 7, lag: lag)
        }
    }

    /// A driver that adopts nothing: every node a primary, no figure.
    struct PlainDriver: SQLDriver {
        var name: String { "plain" }
        func connect(to dsn: String) async throws(SQLError) -> any SQLConnection { try await SQLiteDriver().connect(to: dsn) }
    }

    @Test("roles and lag come from each node's driver, also behind a FaultInjectingDriver; a driver without a dialect is a primary")
    func rolesFromDialects() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-dialect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func dsn(_ node: String) -> String { folder.appendingPathComponent("\(node).sqlite").path }
        var configuration = ClusterDriverConfiguration(name: "dialects")
        // Not a test of timing: in the parallel pass a check of a SQLite file took over the 2 s default.
        configuration.checkTimeout = .seconds(30)
        let cluster = ClusterDriver(configuration: configuration)
        try cluster.addNode(
            name: "primary", driver: FaultInjectingDriver(wrapping: ScriptedReplicaDriver(role: .primary, lag: .caughtUp)),
            dsn: dsn("primary"))
        try cluster.addNode(
            name: "standby", driver: ScriptedReplicaDriver(role: .standby, lag: ReplicationLag(seconds: 3)), dsn: dsn("standby"))
        try cluster.addNode(name: "plain", driver: PlainDriver(), dsn: dsn("plain"))
        try cluster.addNode(name: "sqlite", driver: FaultInjectingDriver(wrapping: SQLiteDriver()), dsn: dsn("sqlite"))
        await cluster.checkAll()
        let nodes = Dictionary(uniqueKeysWithValues: cluster.statistics().nodes.map { ($0.name, $0) })
        // Behind the fault injector the scripted driver still gives its lag (a driver without a dialect gives none).
        #expect(nodes["primary"]?.role == .primary && nodes["primary"]?.replicationLagSeconds == 0)
        #expect(nodes["standby"]?.role == .standby && nodes["standby"]?.replicationLagSeconds == 3)
        #expect(nodes["plain"]?.role == .primary && nodes["plain"]?.replicationLagSeconds == nil)
        #expect(nodes["sqlite"]?.role == .primary && nodes["sqlite"]?.replicationLagSeconds == nil)
        let standby = try await cluster.connect(to: "standby")
        #expect((standby as? ClusterConnection)?.nodeName == "standby")
        await standby.close()
    }
}

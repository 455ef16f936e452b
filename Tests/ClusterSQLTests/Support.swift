import ClusterSQL
import ConnectionKit
import FaultInjection
import Foundation
import Logging
import MariaDBBackend
import SQLCore
import SQLiteBackend
import ServiceLifecycle
import Testing

/// Three SQLite nodes in a temporary folder, each behind its own fault-injecting driver.
final class LocalCluster: Sendable {
    let folder: URL
    let drivers: [String: FaultInjectingDriver]
    let cluster: ClusterDriver

    /// Three nodes (or `nodes`) whose cluster and fault-injecting drivers run on `clock`; `replicationProbes`
    /// gives nodes a probe by name (the driver's by default).
    init(
        strategy: BalancingStrategy = .latency, nodes: [String] = ["n1", "n2", "n3"], clock: AnyClock = .continuous,
        replicationProbes: [String: ReplicationProbe] = [:],
        configure: (inout ClusterDriverConfiguration) -> Void = { _ in }
    ) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = ClusterDriverConfiguration(name: "test")
        configuration.strategy = strategy
        configure(&configuration)
        cluster = ClusterDriver(
            configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), clock: clock)
        var drivers: [String: FaultInjectingDriver] = [:]
        for name in nodes {
            let driver = FaultInjectingDriver(wrapping: SQLiteDriver(), clock: clock)
            drivers[name] = driver
            try cluster.addNode(
                name: name, driver: driver, dsn: Self.dsn(of: name, in: folder), replicationProbe: replicationProbes[name])
        }
        self.drivers = drivers
    }

    static func dsn(of node: String, in folder: URL) -> String {
        folder.appendingPathComponent("\(node).sqlite").path + "?busy_timeout=5000"
    }

    func dsn(of node: String) -> String { Self.dsn(of: node, in: folder) }

    /// Opens `node`'s file directly, bypassing the cluster.
    func direct(_ node: String) async throws -> any SQLConnection { try await SQLiteDriver().connect(to: dsn(of: node)) }

    func node(_ name: String) -> NodeStatistics { cluster.statistics().nodes.first { $0.name == name }! }

    deinit { try? FileManager.default.removeItem(at: folder) }
}

/// Runs `body` while the services' `run()` (a cluster's, a pool's) are active, then stops them.
func whileRunning<T: Sendable>(_ services: any Service..., body: @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        for service in services {
            group.addTask {
                try await service.run()
                return nil
            }
        }
        let result = try await body()
        group.cancelAll()
        return result
    }
}

/// Waits until every Galera node (by DSN) has applied all DDL committed so far and has each of
/// `tables`: Galera runs a CREATE TABLE on the other nodes a moment after it returns on the
/// node that ran it, so a statement routed to a lagging node could find no table.
func waitForTables(_ tables: [String], onNodes dsns: [String]) async throws {
    for dsn in dsns {
        let direct = try await MariaDBDriver().connect(to: dsn)
        _ = try await direct.execute("SET SESSION wsrep_sync_wait = 1")
        for table in tables { _ = try await direct.query("SELECT COUNT(*) FROM \(table)") }
        await direct.close()
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
func eventually(within limit: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A cluster over `nodes`, each opened with `driver`, with checks every 200 ms; no logging.
func makeCluster(
    _ name: String, nodes: [Deployment.Node], driver: any SQLDriver, strategy: BalancingStrategy = .latency
) throws -> ClusterDriver {
    var configuration = ClusterDriverConfiguration(name: name)
    configuration.strategy = strategy
    configuration.checkInterval = .milliseconds(200)
    configuration.checkTimeout = .seconds(1)
    let cluster = ClusterDriver(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    for node in nodes { try cluster.addNode(name: node.name, driver: driver, dsn: node.dsn) }
    return cluster
}

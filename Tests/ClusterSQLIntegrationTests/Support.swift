import ClusterSQL
import Logging
import MariaDBBackend
import SQLCore

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

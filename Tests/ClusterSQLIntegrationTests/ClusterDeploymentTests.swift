import ClusterSQL
import Foundation
import MariaDBBackend
import PostgresBackend
import SQLCore
import TestServers
import TestSupport
import Testing

/// ClusterDriver on a deployment that stays up: TestServers' shared servers,
/// or the `galera` and `postgres` clusters of the config.toml that
/// `CLUSTERSQL_CONFIG` names. Nothing here kills or stops a server.
@Suite("ClusterDriver on a deployment (TestServers' or CLUSTERSQL_CONFIG's)", .timeLimit(.minutes(4)))
struct ClusterDeploymentTests {
    func galeraCluster() async throws -> ClusterDriver {
        try makeCluster("galera", nodes: try await Deployment.galera(), driver: MariaDBDriver(queryTimeout: .seconds(3)))
    }

    @Test("the seed scenario through the cluster; every node is a synced primary")
    func seedScenario() async throws {
        try await GaleraCluster.sharedGate.use {
            let cluster = try await galeraCluster()
            let db = try await cluster.connect(to: "read-write")
            _ = try await db.execute("DROP TABLE IF EXISTS cluster_seed")
            _ = try await db.execute("CREATE TABLE cluster_seed (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40))")
            #expect(try await db.query("SELECT * FROM cluster_seed").isEmpty)
            let insert = try await db.execute("INSERT INTO cluster_seed (name) VALUES (?)", ["alpha"])
            #expect(insert.rowsAffected == 1 && insert.lastInsertID != nil)
            #expect(try await db.query("SELECT name FROM cluster_seed WHERE id = ?", [.integer(insert.lastInsertID!)])[0][0] == "alpha")
            #expect(
                try await db.execute("UPDATE cluster_seed SET name = ? WHERE id = ?", ["beta", .integer(insert.lastInsertID!)]).rowsAffected
                    == 1)
            #expect(try await db.execute("DELETE FROM cluster_seed WHERE name = ?", ["beta"]).rowsAffected == 1)
            #expect(try await db.execute("DELETE FROM cluster_seed WHERE name = ?", ["beta"]).rowsAffected == 0)
            await db.close()
            // A few read-write opens, so every node's role gets read.
            for _ in 1...3 {
                let only = try await cluster.connect(to: "read-write")
                await only.close()
            }
            #expect(cluster.statistics().nodes.allSatisfy { $0.role == .primary || $0.role == .unknown })
        }
    }

    @Test("the seed's concurrency test: 20 tasks insert and read back their rows through the cluster at once")
    func concurrentInsertsAndReads() async throws {
        try await GaleraCluster.sharedGate.use {
            let cluster = try await galeraCluster()
            var configuration = DatabaseConfiguration(name: "concurrency")
            configuration.maxOpen = 10
            let database = Database(driver: cluster, dsn: "read-write", configuration: configuration)
            try await whileRunning(cluster, database) {
                _ = try await database.execute("DROP TABLE IF EXISTS concurrency")
                _ = try await database.execute("CREATE TABLE concurrency (id INT AUTO_INCREMENT PRIMARY KEY, task INT, step INT)")
                try await waitForTables(["concurrency"], onNodes: try await Deployment.galera().map(\.dsn))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<20 {
                        group.addTask {
                            for step in 0..<25 {
                                // Read your writes on the connection that wrote: Galera applies a commit on
                                // the other nodes a moment later (wsrep_sync_wait makes a read wait for it).
                                try await database.withConnection { connection in
                                    let insert = try await connection.execute(
                                        "INSERT INTO concurrency (task, step) VALUES (?, ?)",
                                        [.integer(Int64(task)), .integer(Int64(step))])
                                    #expect(insert.rowsAffected == 1)
                                    let id = try #require(insert.lastInsertID)
                                    let row = try await connection.query("SELECT task, step FROM concurrency WHERE id = ?", [.integer(id)])
                                    #expect(
                                        row.count == 1 && row.first?[0] == .integer(Int64(task)) && row.first?[1] == .integer(Int64(step)))
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let counts = try await database.withConnection { connection in
                    _ = try await connection.execute("SET SESSION wsrep_sync_wait = 1")
                    return try await connection.query("SELECT COUNT(*), COUNT(DISTINCT id) FROM concurrency")[0].values
                }
                #expect(counts == [.integer(500), .integer(500)])
                await database.close()
            }
        }
    }

    @Test("PostgreSQL primary and standby: each target reaches a node of the right kind")
    func postgresTargets() async throws {
        let cluster = try makeCluster("pg", nodes: try await Deployment.postgres(), driver: PostgresDriver())
        for (target, recovery) in [
            ("read-write", false), ("primary", false), ("read-only", true), ("standby", true), ("prefer-standby", true),
        ] {
            let connection = try await cluster.connect(to: target)
            #expect(try await connection.query("SELECT pg_is_in_recovery()")[0][0] == .bool(recovery), "\(target)")
            await connection.close()
        }
    }

    @Test(
        "the checks measure replication: Galera nodes give their apply queue, PostgreSQL's primary lags by nothing and its standby catches up"
    )
    func replicationMeasured() async throws {
        try await GaleraCluster.sharedGate.use {
            let galera = try await galeraCluster()
            await galera.checkAll()
            for node in galera.statistics().nodes {
                #expect(node.role == .primary && node.transactionsBehind != nil, "\(node.name): \(String(describing: node.replicationLag))")
                #expect(node.replicationLagSeconds == nil && !node.isBehindByUnknown)
            }
        }
        let postgres = try makeCluster("pg", nodes: try await Deployment.postgres(), driver: PostgresDriver())
        await postgres.checkAll()  // the primary's write position first, then the standby is compared with it
        #expect(
            await eventually(within: .seconds(10)) {
                await postgres.checkAll()
                let nodes = postgres.statistics().nodes
                // Other suites may be writing to the shared pair: caught up to within a second, not to the byte.
                return nodes.count == 2 && nodes[0].replicationLagSeconds == 0 && nodes[1].role == .standby
                    && (nodes[1].replicationLagSeconds ?? 9) < 1 && nodes[1].bytesBehind != nil
            }, "\(postgres.statistics().nodes.map { "\($0.name): \(String(describing: $0.replicationLag))" })")
    }

    @Test(
        "read-your-writes on Galera: a write, then at once a read on a new connection (round-robin: mostly another node), never misses the row"
    )
    func readYourWritesGalera() async throws {
        try await GaleraCluster.sharedGate.use {
            let cluster = try makeCluster(
                "galera", nodes: try await Deployment.galera(), driver: MariaDBDriver(queryTimeout: .seconds(3)), strategy: .roundRobin)
            let writes = Database(driver: cluster, dsn: "read-write")
            _ = try await writes.execute("DROP TABLE IF EXISTS ryw_galera")
            _ = try await writes.execute("CREATE TABLE ryw_galera (id INT PRIMARY KEY)")
            try await waitForTables(["ryw_galera"], onNodes: try await Deployment.galera().map(\.dsn))
            let session = ReadYourWritesSession()
            var missed = 0
            try await ClusterDriver.readingYourWrites(session) {
                for id in 1...150 {
                    _ = try await writes.execute("INSERT INTO ryw_galera VALUES (?)", [.integer(Int64(id))])
                    let reader = try await cluster.connect(to: "")
                    if try await reader.query("SELECT COUNT(*) FROM ryw_galera WHERE id = ?", [.integer(Int64(id))])[0][0] != .integer(1) {
                        missed += 1
                    }
                    await reader.close()
                }
            }
            #expect(missed == 0)
            #expect(session.token != nil)
            _ = try await writes.execute("DROP TABLE ryw_galera")
            await writes.close()
        }
    }
}

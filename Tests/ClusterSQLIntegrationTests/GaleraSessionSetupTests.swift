import ClusterSQL
import Logging
import MariaDBBackend
import SQLCore
import SQLTestSupport
import TestServers
import TestSupport
import Testing

extension GaleraClusterTests {
    /// Session setup through a cluster: a `Database`'s runs on every node connection; a node's
    /// own runs after it; a node whose setup fails takes no opens and is not ejected for it.
    @Test("session setup through a cluster: every pooled connection on every node sees it; a failing node setup ejects nothing")
    func sessionSetup() async throws {
        let servers = try await Self.servers.value()
        var configuration = ClusterDriverConfiguration(name: "galera-session")
        configuration.strategy = .roundRobin
        configuration.checkInterval = .milliseconds(200)
        let cluster = ClusterDriver(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        for (index, node) in servers.nodes.enumerated() {
            // The third node's own setup fails: its opens fail, statement-class, and move to the others.
            let own = index == 2 ? ["SELEKT 1"] : ["SET SESSION sql_mode = 'ANSI_QUOTES'"]
            try cluster.addNode(name: "node-\(index + 1)", driver: MariaDBDriver().onConnect(SQLSessionSetup(own)), dsn: node.dsn)
        }
        var pool = DatabaseConfiguration(name: "session")
        pool.maxOpen = 6
        let database = Database(driver: cluster, dsn: "any", configuration: pool, onConnect: SQLSessionSetup(["SET time_zone = '+07:00'"]))
        try await whileRunning(cluster, database) {
            let seen = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await database.withConnection { connection in
                            try await Task.sleep(for: .milliseconds(100))  // six held at once: six connections
                            let row = try await connection.query("SELECT @@session.time_zone, @@session.sql_mode")[0]
                            return [row[0].displayText, row[1].displayText]
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(seen.count == 6)
            #expect(seen.allSatisfy { $0 == ["+07:00", "ANSI_QUOTES"] }, "\(seen)")
            let nodes = cluster.statistics().nodes
            #expect(nodes.allSatisfy { $0.state == .up }, "\(nodes.map { "\($0.name) \($0.state)" })")
            #expect(nodes.first { $0.name == "node-3" }?.statements == 0)
        }
        await database.close()
    }
}

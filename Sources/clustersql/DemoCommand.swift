import ArgumentParser
import ClusterConfig
import ClusterSQL
import ConnectionKit
import FaultInjection
import Foundation
import SQLCore

/// `clustersql demo`: the cluster under a workload, with faults halfway.
///
/// On the embedded SQLite `local` cluster by default: every node gets the same
/// orders table; tasks then run point reads and idempotent event writes
/// through a pool over a `ClusterDriver`. Halfway, the fault-injecting driver
/// makes the second node slow and kills the third; the report shows how the
/// traffic shifted, what failed, and the cluster's statistics.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a workload through the cluster; halfway, make one node slow and kill another; show how traffic shifted.")

    @OptionGroup var options: ClusterOptions

    @Option(help: "Statements in all (9 point reads to 1 write).")
    var operations = 150_000

    @Option(help: "Concurrent tasks.")
    var tasks = 8

    @Option(help: "The latency added to the slow node, in milliseconds.")
    var slowMilliseconds = 5

    func run() async throws {
        try await reportingFailures {
            guard operations >= 100, tasks > 0, slowMilliseconds >= 0 else {
                throw ValidationError("--operations must be at least 100, --tasks positive, --slow-milliseconds not negative")
            }
            let configuration = try options.selectedCluster()
            guard configuration.nodes.count >= 3 else {
                throw ValidationError(
                    "the demo needs a cluster of at least 3 nodes; \(configuration.name) has \(configuration.nodes.count)")
            }
            let demo = try DemoCluster(configuration: configuration, registry: standardRegistry(), options: options)
            try await demo.prepare()
            let slow = configuration.nodes[1].name
            let dead = configuration.nodes[2].name
            print(
                "cluster \(configuration.name): \(configuration.nodes.count) \(configuration.driver) nodes, strategy \(configuration.strategy), "
                    + "\(operations) statements on \(tasks) tasks; halfway \(slow) gets +\(slowMilliseconds) ms and \(dead) dies")
            let workload = DemoWorkload(cluster: demo, operations: operations, tasks: tasks) { [demo] in
                demo.drivers[slow]?.faults = .slow(.milliseconds(slowMilliseconds))
                demo.drivers[dead]?.faults = .dead
            }
            let outcome = try await workload.run()
            print()
            print(
                DemoReport(
                    nodes: configuration.nodes.map(\.name), outcome: outcome,
                    secondPhase: "\(slow) +\(slowMilliseconds) ms, \(dead) dead"
                ).render(), terminator: "")
            print()
            print(StatisticsTable.render(demo.cluster.statistics()), terminator: "")
        }
    }
}

/// The demo's cluster: each node behind its own fault-injecting driver.
struct DemoCluster: Sendable {
    let configuration: ClusterConfiguration
    let cluster: ClusterDriver
    let drivers: [String: FaultInjectingDriver]

    init(configuration: ClusterConfiguration, registry: SQLDriverRegistry, options: ClusterOptions) throws {
        self.configuration = configuration
        var drivers: [String: FaultInjectingDriver] = [:]
        cluster = try configuration.makeClusterDriver(
            registry: registry, logger: options.logger, configure: { $0.checkInterval = .milliseconds(250) }
        ) { node, nodeDriver in
            let driver = FaultInjectingDriver(wrapping: nodeDriver)
            drivers[node.name] = driver
            return driver
        }
        self.drivers = drivers
    }

    /// The demo's tables: on every node for SQLite (each file is its own
    /// database), once through the cluster for a replicated cluster.
    func prepare() async throws {
        if configuration.driver == "sqlite" {
            for node in configuration.nodes { try await seed(try await drivers[node.name]!.connect(to: node.dsn)) }
        } else {
            try await seed(try await cluster.connect(to: "read-write"))
        }
    }

    /// Creates and fills the tables on `connection`, then closes it (also on failure).
    private func seed(_ connection: any SQLConnection) async throws {
        do {
            _ = try await connection.execute(
                """
                DROP TABLE IF EXISTS demo_events;
                DROP TABLE IF EXISTS demo_orders;
                CREATE TABLE demo_orders (id INTEGER PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(10,2) NOT NULL);
                CREATE TABLE demo_events (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL);
                """)
            try await connection.withTransaction { connection in
                let insert = try await connection.prepare("INSERT INTO demo_orders (id, customer, amount) VALUES (?, ?, ?)")
                for id in 1...DemoWorkload.orders {
                    _ = try await insert.execute([
                        .integer(Int64(id)), .text("customer-\(id % 97)"), .decimal(SQLDecimal("\(id % 500).\(id % 100)")!),
                    ])
                }
                await insert.close()
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// An insert that does nothing when the row exists, so running it twice is safe.
    var idempotentEventInsert: String {
        switch configuration.driver {
        case "mariadb": "INSERT IGNORE INTO demo_events (id, order_id) VALUES (?, ?)"
        case "postgres": "INSERT INTO demo_events (id, order_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
        default: "INSERT OR IGNORE INTO demo_events (id, order_id) VALUES (?, ?)"
        }
    }
}

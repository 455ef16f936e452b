import ConnectionKit
import ArgumentParser
import ClusterConfig
import Foundation
import SQLCore

/// `clustersql demo`: a real workload on every node of a cluster (the embedded
/// SQLite `local` cluster by default): schema, batched transactional writes
/// through prepared statements, then concurrent point reads, with a progress
/// line and a per-node summary.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a write-then-read workload on every node of a cluster and summarize it.")

    @OptionGroup var options: ClusterOptions

    @Option(help: "Orders written to each node.")
    var orders = 20_000

    @Option(help: "Concurrent reader tasks per node.")
    var readers = 4

    @Option(help: "Point reads per reader task.")
    var reads = 2_000

    func run() async throws {
        try await reportingFailures {
            guard orders > 0, readers > 0, reads > 0 else { throw ValidationError("--orders, --readers and --reads must be positive") }
            let cluster = try options.selectedCluster()
            let registry = try standardRegistry()
            print("cluster \(cluster.name): \(cluster.nodes.count) \(cluster.driver) node(s); \(orders) orders each, \(readers)×\(reads) reads each")
            let progress = Progress(total: orders * cluster.nodes.count)
            let reports = try await withThrowingTaskGroup(of: NodeReport.self) { group in
                for node in cluster.nodes {
                    group.addTask {
                        try await DemoWorkload(registry: registry, driver: cluster.driver, node: node,
                                               orders: orders, readers: readers, reads: reads, progress: progress).run()
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }.sorted { $0.node < $1.node }
            }
            progress.finish()
            print(NodeReport.table(reports), terminator: "")
        }
    }
}

/// What one node did during the demo.
struct NodeReport: Sendable {
    let node: String
    let rows: Int64
    let writeSeconds: Double
    let readLatenciesMicros: [Int]
    let topCustomer: String

    static func table(_ reports: [NodeReport]) -> String {
        let columns = SQLColumns(["node", "rows", "writes/s", "reads", "read p50 µs", "read p99 µs", "top customer"])
        let rows = reports.map { r -> SQLRow in
            let sorted = r.readLatenciesMicros.sorted()
            func percentile(_ p: Double) -> Int { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            return SQLRow(columns: columns, values: [
                .text(r.node), .integer(r.rows), .integer(Int64(Double(r.rows) / max(r.writeSeconds, 1e-9))),
                .integer(Int64(sorted.count)), .integer(Int64(percentile(0.5))), .integer(Int64(percentile(0.99))),
                .text(r.topCustomer),
            ])
        }
        return ResultPrinter(json: false).render(SQLRows(columns: columns, rows: rows))
    }
}

/// The workload on one node.
struct DemoWorkload: Sendable {
    let registry: SQLDriverRegistry
    let driver: String
    let node: NodeConfiguration
    let orders: Int
    let readers: Int
    let reads: Int
    let progress: Progress

    func run() async throws -> NodeReport {
        let clock = ContinuousClock()
        let writer = try await registry.connect(driver: driver, dsn: node.dsn)
        do {
            _ = try await writer.execute("""
                DROP TABLE IF EXISTS demo_orders;
                CREATE TABLE demo_orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount TEXT NOT NULL,
                                          placed TIMESTAMP NOT NULL, paid BOOLEAN NOT NULL);
                """)
            let insert = try await writer.prepare("INSERT INTO demo_orders (id, customer, amount, placed, paid) VALUES (?, ?, ?, ?, ?)")
            let start = clock.now
            let epoch = SQLTimestamp(microsecondsSinceEpoch: 1_700_000_000_000_000)
            for batchStart in stride(from: 0, to: orders, by: 1000) {
                let batchEnd = min(orders, batchStart + 1000)
                try await writer.withTransaction { _ in
                    for id in batchStart..<batchEnd {
                        let cents = (id * 7919) % 100_000
                        _ = try await insert.execute([
                            .integer(Int64(id + 1)), .text("customer-\(id % 97)"),
                            .decimal(SQLDecimal("\(cents / 100).\(String(format: "%02d", cents % 100))")!),
                            .timestamp(SQLTimestamp(microsecondsSinceEpoch: epoch.microsecondsSinceEpoch + Int64(id) * 60_000_000)),
                            .bool(id % 3 != 0),
                        ])
                    }
                }
                progress.add(batchEnd - batchStart)
            }
            let writeSeconds = (clock.now - start).seconds
            await insert.close()
            let latencies = try await readPhase(clock: clock)
            let count = try await writer.query("SELECT count(*) FROM demo_orders")[0].decode(Int64.self, at: 0)
            let top = try await writer.query("""
                SELECT customer, count(*) AS n FROM demo_orders WHERE paid GROUP BY customer ORDER BY n DESC, customer LIMIT 1
                """)
            await writer.close()
            return NodeReport(node: node.name, rows: count, writeSeconds: writeSeconds, readLatenciesMicros: latencies,
                              topCustomer: top.first.map { $0[0].displayText } ?? "-")
        } catch {
            await writer.close()
            throw (error as? SQLError)?.on(node: node.name) ?? error
        }
    }

    private func readPhase(clock: ContinuousClock) async throws -> [Int] {
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for reader in 0..<readers {
                group.addTask {
                    let connection = try await registry.connect(driver: driver, dsn: node.dsn)
                    var latencies: [Int] = []
                    latencies.reserveCapacity(reads)
                    do {
                        for i in 0..<reads {
                            let id = Int64((i * 7 + reader * 13) % orders + 1)
                            let began = clock.now
                            let rows = try await connection.query("SELECT customer, amount, placed FROM demo_orders WHERE id = ?", [.integer(id)])
                            latencies.append(Int((clock.now - began).seconds * 1_000_000))
                            guard rows.count == 1 else { throw SQLError(.serverError, message: "order \(id) is missing") }
                        }
                    } catch {
                        await connection.close()
                        throw error
                    }
                    await connection.close()
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }
}

/// A progress line on standard error, redrawn in place.
final class Progress: Sendable {
    private let state: Locked<(done: Int, lastShown: Int)>
    private let total: Int

    init(total: Int) {
        self.total = total
        self.state = Locked((0, 0))
    }

    func add(_ count: Int) {
        let line: String? = state.withLock { s in
            s.done += count
            guard s.done - s.lastShown >= total / 50 || s.done == total else { return nil }
            s.lastShown = s.done
            return "\rwriting: \(s.done)/\(total) orders (\(s.done * 100 / max(total, 1))%)"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}

extension Duration {
    /// The duration in seconds, as a double.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

// What the cluster layer costs, side by side in one run on the same servers:
//  1. point selects through `Database` over a ClusterDriver of one MariaDB
//     node vs over the MariaDB driver alone (goal >= 0.97x), from the cooperative
//     pool and from the drivers' task executor;
//  2. open latency on a Galera cluster of 3 with one node SIGSTOPped vs all
//     healthy (goal <= 1.1x).
// Run in release:  swift run -c release cluster-bench [seconds] [single|open]
import BenchSupport
import ClusterSQL
import ConnectionKit
import Foundation
import Logging
import MariaDBBackend
import SQLCore
import TestServers

let arguments = Array(CommandLine.arguments.dropFirst())
let seconds = Int(arguments.first ?? "") ?? 10
let only = arguments.dropFirst().first
let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

/// Alternates the two sides in rounds, so that drift in the machine's load hits both alike.
func benchSingleNode() async throws {
    let server = try await MariaDBServer.start(name: "cluster-bench")
    defer { server.destroy() }
    _ = try await server.query("CREATE TABLE test.points (id INT PRIMARY KEY, c VARCHAR(100))")
    _ = try await server.query(
        """
        SET SESSION max_recursive_iterations = 100000;
        INSERT INTO test.points WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 10000)
        SELECT n, REPEAT('x', 100) FROM s
        """)
    let cluster = ClusterDriver(configuration: .init(name: "one"), logger: quiet)
    try cluster.addNode(name: "only", driver: MariaDBDriver(), dsn: server.dsn)
    let sql = "SELECT c FROM points WHERE id = ?"
    let rounds = 8
    let slice = Duration.seconds(Double(seconds) / Double(rounds))
    // From the cooperative pool, then from the drivers' executor (the cluster shares its node's).
    for onExecutor in [false, true] {
        print(
            "Point selects, 4 tasks \(onExecutor ? "on the driver's taskExecutor" : "on the cooperative pool"), \(seconds) s per side in \(rounds) alternating rounds, same MariaDB server, same run"
        )
        var direct = (rate: 0.0, cpu: 0.0)
        var clustered = (rate: 0.0, cpu: 0.0)
        for _ in 0..<rounds {
            var started = cpuTime(children: false)
            direct.rate +=
                try await pointSelects(
                    driver: MariaDBDriver(), dsn: server.dsn, sql: sql, keys: 1...10_000, tasks: 4, duration: slice, onExecutor: onExecutor)
                / Double(rounds)
            direct.cpu += cpuTime(children: false) - started
            started = cpuTime(children: false)
            clustered.rate +=
                try await pointSelects(
                    driver: cluster, dsn: "", sql: sql, keys: 1...10_000, tasks: 4, duration: slice, onExecutor: onExecutor)
                / Double(rounds)
            clustered.cpu += cpuTime(children: false) - started
        }
        report(
            peer: "Database + MariaDBDriver", peerRate: direct.rate, peerCPU: direct.cpu,
            ours: "Database + ClusterDriver (1 node)", ourRate: clustered.rate, ourCPU: clustered.cpu, seconds: seconds, goal: 0.97)
    }
}

/// Opens one after another, each closed at once; the sorted durations.
func timeOpens(_ cluster: ClusterDriver, count: Int) async throws -> [Duration] {
    var times: [Duration] = []
    for _ in 0..<count {
        let started = ContinuousClock.now
        let connection = try await cluster.connect(to: "")
        times.append(ContinuousClock.now - started)
        await connection.close()
    }
    return times.sorted()
}

func benchStoppedNode() async throws {
    let galera = try await GaleraCluster.start()
    defer { galera.nodes.forEach { $0.destroy() } }
    let cluster = ClusterDriver(configuration: .init(name: "galera"), logger: quiet)
    for (index, node) in galera.nodes.enumerated() {
        try cluster.addNode(name: "node-\(index + 1)", driver: MariaDBDriver(queryTimeout: .seconds(3)), dsn: node.dsn + "?timeout=2s")
    }
    let rounds = 4
    let count = max(50, seconds * 15)
    print(
        "Opens on Galera x3 (latency strategy), one after another: \(rounds) rounds of \(count) with all nodes healthy, "
            + "then \(count) from the moment node-3 is SIGSTOPped (its detection included), same run")
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await cluster.run() }
        _ = try await timeOpens(cluster, count: 20)
        var healthy: [Duration] = []
        var stopped: [Duration] = []
        for _ in 0..<rounds {
            healthy += try await timeOpens(cluster, count: count)
            await galera.nodes[2].pause()
            stopped += try await timeOpens(cluster, count: count)
            galera.nodes[2].resume()
            while cluster.statistics().nodes.contains(where: { $0.state != .up }) { try await Task.sleep(for: .milliseconds(50)) }
        }
        group.cancelAll()
        healthy.sort()
        stopped.sort()
        func milliseconds(_ d: Duration) -> Double { d.inSeconds * 1000 }
        func mean(_ list: [Duration]) -> Double { list.map(milliseconds).reduce(0, +) / Double(list.count) }
        for (label, list) in [("all healthy", healthy), ("node-3 SIGSTOPped", stopped)] {
            printLine(
                label,
                String(
                    format: "median %.3f ms   p90 %.3f ms   mean %.3f ms   max %.1f ms",
                    milliseconds(list[list.count / 2]), milliseconds(list[list.count * 9 / 10]), mean(list),
                    milliseconds(list.last!)))
        }
        printLine(
            "ratio, median",
            String(format: "%.2fx (goal <= 1.10x)", milliseconds(stopped[stopped.count / 2]) / milliseconds(healthy[healthy.count / 2])))
        printLine("ratio, mean", String(format: "%.2fx (includes the opens that waited a hedge delay)", mean(stopped) / mean(healthy)))
    }
}

if only == nil || only == "single" { try await benchSingleNode() }
if only == nil || only == "open" { try await benchStoppedNode() }

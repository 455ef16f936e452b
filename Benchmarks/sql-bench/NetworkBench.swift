import BenchSupport
import ConnectionKit
import Foundation
import MariaDBBackend
import PostgresBackend
import SQLCore
import Synchronization
import TestServers

/// One side's figures over the rounds: operations per second and client CPU seconds per round.
struct Side {
    var rates: [Double] = []
    var cpu: [Double] = []

    /// Median rate, and median client CPU per operation in µs, over `seconds`-long rounds.
    func summary(seconds: Int) -> String {
        let perOperation = zip(cpu, rates).map { $0 / ($1 * Double(seconds)) * 1e6 }
        return String(format: "%9.0f /s  %6.1f µs client CPU per query (medians)", median(rates), median(perOperation))
    }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// "ratio 0.97x (goal >= 0.95x; rounds 0.95, 0.97, 0.99)": the median of the per-round ratios `ours / peer`.
func ratioLine(_ label: String, ours: [Double], peer: [Double], goal: Double) {
    let ratios = zip(ours, peer).map { $0 / $1 }
    printLine(
        label,
        String(
            format: "ratio %.2fx (goal >= %.2fx; rounds %@)", median(ratios), goal,
            ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
}

/// Runs `work` (which returns a rate) and adds its rate and the CPU it cost (this process, or its reaped children) to `side`.
func measure(_ side: inout Side, children: Bool, _ work: () async throws -> Double) async throws {
    let started = cpuTime(children: children)
    side.rates.append(try await work())
    side.cpu.append(cpuTime(children: children) - started)
}

/// A C peer in peers/, built with `cc` into `folder`.
func buildPeer(_ name: String, into folder: URL, flags: [String]) async throws -> String {
    let binary = folder.appendingPathComponent(name).path
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peers/\(name).c").path
    try await Commands.run("/usr/bin/cc", ["-O2", "-o", binary, source] + flags)
    return binary
}

/// `rows` inserts as one batch on `connection` against the C program `peer` (run with
/// `arguments` and the row count), alternating rounds, each side on a table made anew
/// by `create`; the ratio is C's time over ours. Ours makes its rows inside the timing.
func batchRounds(
    _ label: String, rounds: Int, rows: Int, connection: any SQLConnection, create: String, peer: String, arguments: [String]
) async throws {
    print("\(label) batch insert, \(rows) rows in one transaction, \(rounds) alternating rounds (ratio = C time / ours)")
    var cTimes: [Double] = []
    var ourTimes: [Double] = []
    for _ in 0..<rounds {
        _ = try await connection.execute(create)
        let output = try await Commands.run(peer, arguments + [String(rows)]).output
        guard let seconds = number(after: "seconds=", in: output) else {
            throw TestServerError("could not read the C peer's time:\n\(output)")
        }
        cTimes.append(seconds)
        _ = try await connection.execute(create)
        ourTimes.append(
            try await timeOf {
                let batch = (1...rows).map { [SQLValue.integer(Int64($0)), "row"] }
                _ = try await connection.execute("INSERT INTO t (id, name) VALUES (?, ?)", batch: batch)
            })
    }
    printLine("C peer", String(format: "%8.1f ms (median)", median(cTimes) * 1e3))
    printLine("ours, one execute(_:batch:)", String(format: "%8.1f ms (median)", median(ourTimes) * 1e3))
    ratioLine("batch insert", ours: cTimes, peer: ourTimes, goal: 0.9)
}

func timeOf(_ work: () async throws -> Void) async throws -> Double {
    let started = ContinuousClock.now
    try await work()
    return started.duration(to: .now).inSeconds
}

/// PostgreSQL: point selects through `Database` (from the cooperative pool, and from the
/// driver's executor) against `pgbench -S` in simple and prepared mode, alternating
/// rounds on one server; then a 100,000-row batch against a C program using pipeline mode.
func benchPostgres(seconds: Int, rounds: Int, folder: URL, profile: String? = nil) async throws {
    let cluster = try await PostgresCluster.start(standbys: 0, maxConnections: 250)
    defer { cluster.destroy() }
    let server = cluster.primary
    let pgbench = "/usr/lib/postgresql/15/bin/pgbench"
    let target = ["-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres", "postgres"]
    try await Commands.run(pgbench, ["-i", "-s", "1", "-q"] + target)
    print("PostgreSQL point selects, 4 clients, \(seconds) s a side, \(rounds) alternating rounds, same server (pgbench scale 1)")
    var simple = Side()
    var prepared = Side()
    var pool = Side()
    var executor = Side()
    func pgbenchRate(_ mode: String) async throws -> Double {
        let output = try await Commands.run(pgbench, ["-S", "-n", "-M", mode, "-c", "4", "-j", "2", "-T", String(seconds)] + target).output
        guard let rate = number(after: "tps =", in: output) else { throw TestServerError("could not read pgbench's tps:\n\(output)") }
        return rate
    }
    func ours(onExecutor: Bool) async throws -> Double {
        try await pointSelects(
            driver: PostgresDriver(), dsn: server.dsn, sql: "SELECT abalance FROM pgbench_accounts WHERE aid = ?",
            keys: 1...100_000, tasks: 4, duration: .seconds(seconds), onExecutor: onExecutor)
    }
    if let profile {  // `sql-bench SECONDS postgres executor|pool`: only ours, for a profiler
        print(String(format: "ours: %.0f /s", try await ours(onExecutor: profile == "executor")))
        return
    }
    for _ in 0..<rounds {
        try await measure(&simple, children: true) { try await pgbenchRate("simple") }
        try await measure(&pool, children: false) { try await ours(onExecutor: false) }
        try await measure(&prepared, children: true) { try await pgbenchRate("prepared") }
        try await measure(&executor, children: false) { try await ours(onExecutor: true) }
    }
    printLine("pgbench -S -c 4 -j 2", simple.summary(seconds: seconds))
    printLine("pgbench -S -M prepared", prepared.summary(seconds: seconds))
    printLine("Database, cooperative pool", pool.summary(seconds: seconds))
    printLine("Database, on its taskExecutor", executor.summary(seconds: seconds))
    ratioLine("pool vs pgbench -S", ours: pool.rates, peer: simple.rates, goal: 0.8)
    ratioLine("executor vs pgbench -S", ours: executor.rates, peer: simple.rates, goal: 0.95)
    ratioLine("executor vs pgbench -M prepared", ours: executor.rates, peer: prepared.rates, goal: 0.9)

    let rows = 100_000
    let peer = try await buildPeer("postgres_pipeline_peer", into: folder, flags: ["-I/usr/include/postgresql", "-lpq"])
    let connection = try await PostgresDriver().connect(to: server.dsn)
    try await batchRounds(
        "PostgreSQL", rounds: rounds, rows: rows, connection: connection,
        create: "DROP TABLE IF EXISTS t; CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT)",
        peer: peer, arguments: [server.dsn])
    await connection.close()
    try await memoryRow(
        "PostgreSQL", driver: PostgresDriver(), dsn: server.dsn,
        peer: try await connectionsPeer(into: folder), arguments: ["postgres", server.dsn])
}

/// MariaDB: point selects through `Database` (both ways of calling) against sysbench's
/// oltp_point_select, alternating rounds; then a 100,000-row batch against a C program using bulk binding.
func benchMariaDB(seconds: Int, rounds: Int, folder: URL, profile: String? = nil) async throws {
    let server = try await MariaDBServer.start(name: "bench", maxConnections: 250)
    defer { server.destroy() }
    let tableRows = 10_000
    let target = [
        "--mysql-host=127.0.0.1", "--mysql-port=\(server.port)", "--mysql-user=test", "--mysql-password=test",
        "--mysql-db=test", "--tables=1", "--table-size=\(tableRows)",
    ]
    try await Commands.run("/usr/bin/sysbench", ["oltp_point_select"] + target + ["prepare"])
    print("MariaDB point selects, 4 clients, \(seconds) s a side, \(rounds) alternating rounds, same server (sysbench, \(tableRows) rows)")
    var sysbench = Side()
    var pool = Side()
    var executor = Side()
    func sysbenchRate() async throws -> Double {
        let output = try await Commands.run(
            "/usr/bin/sysbench", ["oltp_point_select"] + target + ["--threads=4", "--time=\(seconds)", "run"]
        ).output
        // "    queries:   183112 (18311.25 per sec.)"
        let queries = output.split(separator: "\n").first { $0.contains("queries:") }.map(String.init) ?? ""
        guard let rate = number(after: "(", in: queries) else { throw TestServerError("could not read sysbench's rate:\n\(output)") }
        return rate
    }
    func ours(onExecutor: Bool) async throws -> Double {
        try await pointSelects(
            driver: MariaDBDriver(), dsn: server.dsn, sql: "SELECT c FROM sbtest1 WHERE id = ?",
            keys: 1...Int64(tableRows), tasks: 4, duration: .seconds(seconds), onExecutor: onExecutor)
    }
    if let profile {  // `sql-bench SECONDS mariadb executor|pool`: only ours, for a profiler
        print(String(format: "ours: %.0f /s", try await ours(onExecutor: profile == "executor")))
        return
    }
    var peerAgain = Side()
    for _ in 0..<rounds {
        try await measure(&sysbench, children: true) { try await sysbenchRate() }
        try await measure(&pool, children: false) { try await ours(onExecutor: false) }
        try await measure(&peerAgain, children: true) { try await sysbenchRate() }
        try await measure(&executor, children: false) { try await ours(onExecutor: true) }
    }
    printLine("sysbench oltp_point_select -t 4", sysbench.summary(seconds: seconds))
    printLine("Database, cooperative pool", pool.summary(seconds: seconds))
    printLine("Database, on its taskExecutor", executor.summary(seconds: seconds))
    ratioLine("pool vs sysbench", ours: pool.rates, peer: sysbench.rates, goal: 0.8)
    ratioLine("executor vs sysbench", ours: executor.rates, peer: peerAgain.rates, goal: 0.95)

    let rows = 100_000
    let peer = try await buildPeer("mariadb_bulk_peer", into: folder, flags: ["-I/usr/include/mariadb", "-lmariadb"])
    let connection = try await MariaDBDriver().connect(to: server.dsn)
    try await batchRounds(
        "MariaDB", rounds: rounds, rows: rows, connection: connection,
        create: "DROP TABLE IF EXISTS t; CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(16)) ENGINE=InnoDB",
        peer: peer, arguments: ["127.0.0.1", String(server.port), "test", "test", "test"])
    await connection.close()
    try await memoryRow(
        "MariaDB", driver: MariaDBDriver(), dsn: server.dsn, peer: try await connectionsPeer(into: folder),
        arguments: ["mariadb", "127.0.0.1", String(server.port), "test", "test", "test"])
}

/// peers/connections_peer.c, built against both C clients.
func connectionsPeer(into folder: URL) async throws -> String {
    let binary = folder.appendingPathComponent("connections_peer").path
    if FileManager.default.fileExists(atPath: binary) { return binary }
    return try await buildPeer(
        "connections_peer", into: folder,
        flags: ["-I/usr/include/postgresql", "-I/usr/include/mariadb", "-lpq", "-lmariadb"])
}

/// This process's resident set, in KiB.
func residentKiB() -> Double {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
        let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
    else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

/// Client memory per open connection: `count` connections held in a `Database` pool
/// against a C program holding as many of the same C client's connections (peers/connections_peer.c).
/// Each side opens one connection first, so that both measure with their libraries loaded.
func memoryRow(_ label: String, driver: any SQLDriver, dsn: String, peer: String, arguments: [String], count: Int = 200) async throws {
    let output = try await Commands.run(peer, arguments + [String(count)]).output
    guard let cKiB = number(after: "kib_per_connection=", in: output) else {
        throw TestServerError("could not read the C peer's figure:\n\(output)")
    }
    var configuration = DatabaseConfiguration(name: "memory")
    configuration.maxOpen = count + 1
    configuration.maxIdle = count + 1
    let db = Database(driver: driver, dsn: dsn, configuration: configuration)
    _ = try await db.query("SELECT 1")
    let before = residentKiB()
    final class Opened: Sendable { let count = Mutex(0) }
    let opened = Opened()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<count {
            group.addTask {
                try await db.withConnection { connection in
                    _ = try await connection.query("SELECT 1", [])
                    opened.count.withLock { $0 += 1 }
                    // Hold it until every task holds one, so that the pool opens `count` connections.
                    while opened.count.withLock({ $0 }) < count { try await Task.sleep(for: .milliseconds(5)) }
                }
            }
        }
        try await group.waitForAll()
    }
    let ours = (residentKiB() - before) / Double(count)
    await db.close()
    print("\(label) client memory per open connection, \(count) held (RSS after - before, / \(count))")
    printLine("C program, same C client", String(format: "%7.1f KiB", cKiB))
    printLine("ours, Database pool", String(format: "%7.1f KiB", ours))
    printLine("ratio ours / C", String(format: "%7.2fx (goal <= 1.50x)", ours / cKiB))
}

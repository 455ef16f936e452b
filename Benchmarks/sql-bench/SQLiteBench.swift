import BenchSupport
import ConnectionKit
import Foundation
import SQLCore
import SQLiteBackend
import TestServers

/// SQLite against the same work written in C (peers/sqlite_peer.c, built here with cc):
/// 100,000 inserts in one transaction as one batch and one statement at a time (from
/// the cooperative pool, and from a task on the connection's own executor), and
/// the 100,000 rows read back. Each side times its work alone (the file opened before),
/// in alternating rounds; the ratio is C's time over ours, the median of the rounds.
func benchSQLite(rounds: Int, profile: String? = nil) async throws {
    let rows = 100_000
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sql-bench-sqlite-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let peer = folder.appendingPathComponent("sqlite_peer").path
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peers/sqlite_peer.c").path
    try await Commands.run("/usr/bin/cc", ["-O2", "-o", peer, source, "-lsqlite3"])
    let cFile = folder.appendingPathComponent("c.sqlite").path
    let ourFile = folder.appendingPathComponent("swift.sqlite").path

    func cSeconds(_ mode: String) async throws -> Double {
        let output = try await Commands.run(peer, [cFile, String(rows), mode]).output
        guard let seconds = number(after: "seconds=", in: output) else {
            throw TestServerError("could not read the C peer's time:\n\(output)")
        }
        return seconds
    }

    let connection = try await SQLiteConnection.open(SQLiteConfiguration(path: ourFile))
    defer { Task { await connection.close() } }
    let insert = "INSERT INTO t (id, name) VALUES (?, ?)"
    func freshTable() async throws {
        _ = try await connection.execute("DROP TABLE IF EXISTS t")
        _ = try await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    }
    func timed(_ work: () async throws -> Void) async throws -> Double {
        let started = ContinuousClock.now
        try await work()
        return started.duration(to: .now).inSeconds
    }
    // Ours: the rows are made inside the timing, as a caller makes them.
    var buildingRows: [Double] = []
    func batchInsert() async throws -> Double {
        try await freshTable()
        return try await timed {
            let started = ContinuousClock.now
            let batch = (1...rows).map { [SQLValue.integer(Int64($0)), "row"] }
            buildingRows.append(started.duration(to: .now).inSeconds)
            _ = try await connection.execute(insert, batch: batch)
        }
    }
    func statementInserts() async throws -> Double {
        try await freshTable()
        return try await timed {
            try await connection.begin()
            for id in 1...rows { _ = try await connection.execute(insert, [.integer(Int64(id)), "row"]) }
            try await connection.commit()
        }
    }
    // The same loop from a task that prefers the connection's thread: each statement runs in place.
    func statementInsertsOnThread() async throws -> Double {
        try await freshTable()
        return try await withTaskExecutorPreference(connection.taskExecutor) {
            try await timed {
                try await connection.begin()
                for id in 1...rows { _ = try await connection.execute(insert, [.integer(Int64(id)), "row"]) }
                try await connection.commit()
            }
        }
    }
    func selectAll() async throws -> Double {
        try await timed {
            let all = try await connection.query("SELECT id, name FROM t")
            precondition(all.count == rows)
        }
    }

    switch profile {  // `sql-bench 0 sqlite batch|each|select`: only that work of ours, repeated, for a profiler
    case "batch":
        for _ in 0..<20 { _ = try await batchInsert() }
        return
    case "each":
        for _ in 0..<10 { _ = try await statementInsertsOnThread() }
        return
    case "select":
        _ = try await batchInsert()
        for _ in 0..<50 { _ = try await selectAll() }
        return
    default: break
    }
    print("SQLite, \(rows) rows, one connection, \(rounds) alternating rounds (time of the work; ratio = C / ours)")
    var cInsert: [Double] = []
    var oursBatch: [Double] = []
    var oursEach: [Double] = []
    var oursEachOnThread: [Double] = []
    var cSelect: [Double] = []
    var oursSelect: [Double] = []
    for _ in 0..<rounds {
        cInsert.append(try await cSeconds("insert"))
        oursBatch.append(try await batchInsert())
        cInsert.append(try await cSeconds("insert"))
        oursEach.append(try await statementInserts())
        cInsert.append(try await cSeconds("insert"))
        oursEachOnThread.append(try await statementInsertsOnThread())
        cSelect.append(try await cSeconds("select"))
        oursSelect.append(try await selectAll())
    }
    func line(_ label: String, ours: [Double], c: [Double], goal: Double) {
        let ratios = zip(c, ours).map { $0 / $1 }.sorted()
        let median = ratios[ratios.count / 2]
        printLine(
            label,
            String(
                format: "ours %7.1f ms, C %7.1f ms (medians)   ratio %.2fx (goal >= %.2fx; rounds %@)",
                ours.sorted()[ours.count / 2] * 1e3, c.sorted()[c.count / 2] * 1e3, median, goal,
                ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
    }
    let cBeforeBatch = stride(from: 0, to: cInsert.count, by: 3).map { cInsert[$0] }
    let cBeforeEach = stride(from: 1, to: cInsert.count, by: 3).map { cInsert[$0] }
    let cBeforeEachOnThread = stride(from: 2, to: cInsert.count, by: 3).map { cInsert[$0] }
    line("insert, one batch", ours: oursBatch, c: cBeforeBatch, goal: 0.9)
    printLine("  of which making the rows", String(format: "%7.1f ms (median)", buildingRows.sorted()[buildingRows.count / 2] * 1e3))
    line("insert, a statement each", ours: oursEach, c: cBeforeEach, goal: 0.4)
    line("  the same on the connection's executor", ours: oursEachOnThread, c: cBeforeEachOnThread, goal: 0.4)
    line("select all rows", ours: oursSelect, c: cSelect, goal: 0.8)
}

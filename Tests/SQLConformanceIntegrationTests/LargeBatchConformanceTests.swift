import SQLCore
import SQLTestSupport
import Testing

/// Batches past the fast paths' own sizes (PostgreSQL's pipeline window,
/// MariaDB's bulk chunks) and batches the bulk path cannot report from totals:
/// every backend still names the failing row and reports each row exactly.
@Suite("Large and uneven batches on every backend", .timeLimit(.minutes(3)))
struct LargeBatchConformanceTests {
    @Test("25,000 rows: all of them, or none with the failing row named", arguments: Backend.allCases)
    func largeBatch(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_big")
        let insert = "INSERT INTO \(table) (id, name) VALUES (?, ?)"
        _ = try await db.execute(insert, [20_001, "already there"])
        let rows: [[SQLValue]] = (1...25_000).map { [.integer(Int64($0)), .text("n\($0)")] }
        let error = await expectSQLError(.constraintViolation) { try await db.execute(insert, batch: rows) }
        #expect(error?.batchRow == 20_000, "row 20,000 holds id 20,001")
        #expect(try await count(table, on: db) == 1)
        _ = try await db.execute("DELETE FROM \(table)")
        let reports = try await db.execute(insert, batch: rows)
        #expect(reports.count == 25_000 && reports.allSatisfy { $0.rowsAffected == 1 })
        #expect(try await count(table, on: db) == 25_000)
        #expect(try await db.query("SELECT name FROM \(table) WHERE id = ?", [24_999])[0][0] == "n24999")
        #expect(db.isValid)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test(
        "a column whose rows differ in type, NULLs, and rows that affect 0 or 1 row each are reported row by row",
        arguments: Backend.allCases)
    func unevenRows(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_uneven")
        let insert = "INSERT INTO \(table) (id, name) VALUES (?, ?)"
        let mixed: [[SQLValue]] = [[1, "a"], [2, 7], [3, .null], [4, 2.5]]
        #expect(try await db.execute(insert, batch: mixed).map(\.rowsAffected) == [1, 1, 1, 1])
        #expect(try await db.query("SELECT name FROM \(table) WHERE id = 2")[0][0] == "7")
        #expect(try await db.query("SELECT name FROM \(table) WHERE id = 3")[0][0] == .null)

        let ignoring =
            switch backend {
            case .sqlite: "INSERT OR IGNORE INTO \(table) (id, name) VALUES (?, ?)"
            case .postgres: "INSERT INTO \(table) (id, name) VALUES (?, ?) ON CONFLICT DO NOTHING"
            case .mariadb: "INSERT IGNORE INTO \(table) (id, name) VALUES (?, ?)"
            }
        let reports = try await db.execute(ignoring, batch: [[10, "new"], [1, "taken"], [11, "new"], [2, "taken"]])
        #expect(reports.map(\.rowsAffected) == [1, 0, 1, 0])
        #expect(try await count(table, on: db) == 6)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("dates, timestamps, doubles, blobs and NULLs go through each fast path intact", arguments: Backend.allCases)
    func typedColumns(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = "batch_typed_\(UInt32.random(in: 0...UInt32.max))"
        let columns =
            switch backend {
            case .sqlite: "id INTEGER PRIMARY KEY, d DATE, ts TIMESTAMP, x REAL, b BLOB"
            case .postgres: "id bigint PRIMARY KEY, d date, ts timestamptz, x double precision, b bytea"
            case .mariadb: "id BIGINT PRIMARY KEY, d DATE, ts DATETIME(6), x DOUBLE, b BLOB"
            }
        _ = try await db.execute("CREATE TABLE \(table) (\(columns))")
        let rows: [[SQLValue]] = (1...300).map { n in
            let date = SQLDate(year: 2000 + n % 30, month: 1 + n % 12, day: 1 + n % 28).map(SQLValue.date) ?? .null
            let stamp = SQLValue.timestamp(SQLTimestamp(microsecondsSinceEpoch: 1_700_000_000_000_000 + Int64(n) * 1_000_123))
            let blob: SQLValue = n % 7 == 0 ? .null : .blob([UInt8(n % 256), 0, 255, 10])
            return [.integer(Int64(n)), n % 5 == 0 ? .null : date, stamp, .double(Double(n) / 8), blob]
        }
        let reports = try await db.execute("INSERT INTO \(table) (id, d, ts, x, b) VALUES (?, ?, ?, ?, ?)", batch: rows)
        #expect(reports.count == 300 && reports.allSatisfy { $0.rowsAffected == 1 })
        let back = try await db.query("SELECT id, d, ts, x, b FROM \(table) ORDER BY id")
        #expect(back.count == 300)
        for (row, sent) in zip(back, rows) {
            #expect(Array(row.values.dropFirst()) == Array(sent.dropFirst()), "row \(sent[0])")
        }
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("the lowest failing row is named, even when a later row fails before it is sent", arguments: Backend.allCases)
    func lowestFailingRow(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_order")
        let insert = "INSERT INTO \(table) (id, name) VALUES (?, ?)"
        _ = try await db.execute(insert, [6, "taken"])
        var rows: [[SQLValue]] = (1...3_000).map { [.integer(Int64($0)), "n"] }
        rows[2_000] = [2_001]  // a row with a value missing: refused before it is sent
        let error = await expectSQLError(oneOf: [.constraintViolation]) { try await db.execute(insert, batch: rows) }
        #expect(error?.batchRow == 5, "row 5 holds id 6, and comes before the malformed row 2,000")
        #expect(try await count(table, on: db) == 1)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test(
        "cancelling a batch stops it promptly: all of it or none; the connection stays usable unless a cancel request may still be on its way",
        arguments: Backend.allCases)
    func cancelledBatch(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_cancel")
        let rows: [[SQLValue]] = (1...200_000).map { [.integer(Int64($0)), "n"] }
        let batch = Task { try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: rows) }
        try await Task.sleep(for: .milliseconds(30))
        let started = ContinuousClock.now
        batch.cancel()
        do {
            _ = try await batch.value
        } catch let error as SQLError {
            #expect(error.code == .cancelled, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(6), "a cancelled batch must not run on row by row")
        // SQLite's interrupt is spent at once; a PQcancel or a KILL QUERY that no error proves spent
        // gives the connection up (it would stop the next statement): look with a new one then.
        if backend == .sqlite { #expect(db.isValid) }
        let reader = db.isValid ? db : try await backend.connect()  // the same server database
        let stored = try await count(table, on: reader)
        #expect(stored == 0 || stored == 200_000, "all or nothing, not \(stored)")
        _ = try await reader.execute("DROP TABLE \(table)")
        if reader !== db { await reader.close() }
        await db.close()
    }
}

import SQLCore
import SQLTestSupport
import Testing

/// `execute(_:batch:)` behaves the same on every backend: all rows or none,
/// the failing row named, the caller's transaction respected.
@Suite("Batches on every backend", .timeLimit(.minutes(3)))
struct BatchConformanceTests {
    @Test("a batch inserts every row and reports each; an empty batch does nothing", arguments: Backend.allCases)
    func insertsEveryRow(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_all")
        let rows: [[SQLValue]] = (1...1_000).map { [.integer(Int64($0)), .text("name \($0)")] }
        let reports = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: rows)
        #expect(reports.count == 1_000)
        #expect(reports.allSatisfy { $0.rowsAffected == 1 })
        #expect(try await count(table, on: db) == 1_000)
        #expect(try await db.query("SELECT name FROM \(table) WHERE id = ?", [777])[0][0] == "name 777")
        let updates = try await db.execute("UPDATE \(table) SET name = ? WHERE id <= ?", batch: [["x", 10], ["y", 0]])
        #expect(updates.map(\.rowsAffected) == [10, 0])
        #expect(try await db.execute("DELETE FROM \(table)", batch: []).isEmpty)
        #expect(try await count(table, on: db) == 1_000)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("a failing row undoes the whole batch and is named; the connection stays usable", arguments: Backend.allCases)
    func failingRowUndoesAll(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_fail")
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [500, "already there"])
        let rows: [[SQLValue]] = (1...1_000).map { [.integer(Int64($0)), .text("n")] }
        let error = await expectSQLError(.constraintViolation) {
            try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: rows)
        }
        #expect(error?.batchRow == 499, "row 499 holds id 500")
        #expect(error.map { "\($0)".contains("batch row 499") } == true)
        #expect(try await count(table, on: db) == 1, "nothing of the batch remains")
        let mismatch = await expectSQLError(.parameterCountMismatch) {
            try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: [[1, "a"], [2]])
        }
        #expect(mismatch?.batchRow == 1)
        #expect(try await count(table, on: db) == 1)
        #expect(db.isValid)
        #expect(try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: [[1, "a"], [2, "b"]]).count == 2)
        #expect(try await count(table, on: db) == 3)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test(
        "inside the caller's transaction: a failed batch (a failing row, or SQL that cannot be prepared) leaves what came before it, the caller's rollback undoes a good one",
        arguments: Backend.allCases)
    func insideTransaction(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_tx")
        try await db.begin()
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [1, "before the batch"])
        let error = await expectSQLError(.constraintViolation) {
            try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: [[2, "b"], [3, "c"], [1, "duplicate"]])
        }
        #expect(error?.batchRow == 2)
        do {
            _ = try await db.execute("INSERT INTO nosuch_\(table) (id) VALUES (?)", batch: [[5]])
            Issue.record("a batch into a missing table succeeded")
        } catch {
            #expect(error.batchRow == nil, "a statement that cannot be prepared is no row's fault")
        }
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [4, "after the batch"])
        try await db.commit()
        let ids = try await db.query("SELECT id FROM \(table) ORDER BY id").map { $0[0] }
        #expect(ids == [1, 4], "the transaction went on; the batch left nothing")

        try await db.begin()
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: [[10, "x"], [11, "y"]])
        #expect(try await count(table, on: db) == 4)
        try await db.rollback()
        #expect(try await count(table, on: db) == 2, "the caller's rollback undid the batch")
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("Database runs a batch on a pooled connection", arguments: Backend.allCases)
    func throughDatabase(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        let database = Database(driver: driver, dsn: dsn)
        let table = try await database.withConnection { connection in try await freshTable(on: connection, "batch_db") }
        let reports = try await database.execute(
            "INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: (1...50).map { [.integer(Int64($0)), "n"] })
        #expect(reports.count == 50)
        #expect(try await database.query("SELECT COUNT(*) FROM \(table)")[0][0] == 50)
        _ = try await database.execute("DROP TABLE \(table)")
        await database.close()
    }
}

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

    @Test("a column whose rows differ in type, NULLs, and rows that affect 0 or 1 row each are reported row by row", arguments: Backend.allCases)
    func unevenRows(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "batch_uneven")
        let insert = "INSERT INTO \(table) (id, name) VALUES (?, ?)"
        let mixed: [[SQLValue]] = [[1, "a"], [2, 7], [3, .null], [4, 2.5]]
        #expect(try await db.execute(insert, batch: mixed).map(\.rowsAffected) == [1, 1, 1, 1])
        #expect(try await db.query("SELECT name FROM \(table) WHERE id = 2")[0][0] == "7")
        #expect(try await db.query("SELECT name FROM \(table) WHERE id = 3")[0][0] == .null)

        let ignoring = switch backend {
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
}

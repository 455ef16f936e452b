import SQLCore
import SQLTestSupport
import Testing

/// Input a careless or hostile caller may send: each is a typed statement error
/// (or a documented answer), never a crash, a hang or a silently shortened statement,
/// and the connection stays usable.
@Suite("Bad input on every backend", .timeLimit(.minutes(3)))
struct BadInputConformanceTests {
    @Test("SQL text with a NUL is refused, not cut at the NUL (the C clients read C strings)", arguments: Backend.allCases)
    func nulInSQL(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "bad_nul")
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [1, "kept"])
        for sql in ["SELECT 1\u{0}; DELETE FROM \(table)", "DELETE FROM \(table) WHERE id = 2\u{0} OR 1 = 1"] {
            await expectSQLError(.syntaxError) { _ = try await db.query(sql) }
            await expectSQLError(.syntaxError) { _ = try await db.execute(sql, [1]) }
            await expectSQLError(.syntaxError) { _ = try await db.execute(sql) }
            await expectSQLError(.syntaxError) { _ = try await db.prepare(sql) }
            await expectSQLError(.syntaxError) { _ = try await db.execute(sql, batch: [[1], [2]]) }
        }
        #expect(try await count(table, on: db) == 1, "nothing after a NUL ran")
        // A NUL in a bound value is data; PostgreSQL's text cannot hold one, which is a typed error.
        do {
            #expect(try await db.query("SELECT name FROM \(table) WHERE name = ?", ["a\u{0}b"]).isEmpty)
        } catch {
            #expect(backend == .postgres && error.code == .typeMismatch, "\(error)")
        }
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("more placeholders than the protocol carries (65,536) is a typed statement error", arguments: Backend.allCases)
    func tooManyParameters(backend: Backend) async throws {
        let db = try await backend.connect()
        let count = 65_536
        let sql = "SELECT " + Array(repeating: "?", count: count).joined(separator: ", ")
        let values = (0..<count).map { SQLValue.integer(Int64($0)) }
        do {
            _ = try await db.query(sql, values)
            Issue.record("\(backend): expected an error for \(count) parameters")
        } catch {
            #expect(error.kind == .statement, "\(error)")
        }
        #expect(db.isValid)
        #expect(try await db.query("SELECT 1")[0][0] == 1)
        await db.close()
    }

    @Test(
        "70,000 parameters in an IN list are tooManyParameters on the servers (a statement error, refused before anything is sent)",
        arguments: Backend.allCases)
    func tooManyParametersInAList(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "bad_in_list")
        let placeholders = 70_000
        let sql = "SELECT id FROM \(table) WHERE id IN (" + Array(repeating: "?", count: placeholders).joined(separator: ", ") + ")"
        let values = (0..<placeholders).map { SQLValue.integer(Int64($0)) }
        if backend == .sqlite {
            // Debian's SQLite takes up to 250,000 variables; past its limit, prepare fails as tooManyParameters.
            #expect(try await db.query(sql, values).isEmpty)
        } else {
            await expectSQLError(.tooManyParameters) { _ = try await db.query(sql, values) }
        }
        #expect(db.isValid)
        #expect(try await count(table, on: db) == 0)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test(
        "a blob past what the backend holds in one value (1 GiB + 1 byte) is tooBig, refused before it is sent; never a crash",
        arguments: [Backend.sqlite, .postgres])
    func oversizedValue(backend: Backend) async throws {
        // MariaDB's limit is the server's max_allowed_packet, which it enforces by closing the connection.
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "bad_oversized")
        // Never written: the limits are checked before a byte is read, so the pages stay untouched
        // (filling 1 GiB held both threads of the cooperative pool for seconds in a parallel pass).
        let huge = SQLValue.blob([UInt8](unsafeUninitializedCapacity: (1 << 30) + 1) { _, count in count = (1 << 30) + 1 })
        await expectSQLError(.tooBig) { _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [1, huge]) }
        #expect(db.isValid)
        #expect(try await count(table, on: db) == 0)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("an empty batch runs nothing and answers nothing", arguments: Backend.allCases)
    func emptyBatch(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "bad_empty_batch")
        #expect(try await db.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", batch: []).isEmpty)
        #expect(try await count(table, on: db) == 0)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }
}

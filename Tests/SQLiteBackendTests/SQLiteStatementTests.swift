import Foundation
import SQLCore
import SQLTestSupport
import SQLiteBackend
import Testing

@Suite("SQLite: statements, parameters, transactions, errors", .timeLimit(.minutes(2)))
struct SQLiteStatementTests {
    @Test("the clustersql seed's scenario: create, insert, select, update, delete")
    func seedScenario() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute("DROP TABLE IF EXISTS test")
            _ = try await db.execute("CREATE TABLE test (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)")
            #expect(try await db.query("SELECT * FROM test").isEmpty)
            let insert = try await db.execute("INSERT INTO test (name) VALUES (?)", ["one"])
            #expect(insert == SQLExecution(rowsAffected: 1, lastInsertID: 1))
            let second = try await db.execute("INSERT INTO test (name) VALUES (?)", ["two"])
            #expect(second.lastInsertID == 2)
            let rows = try await db.query("SELECT id, name FROM test ORDER BY id")
            #expect(rows.map { $0["name"] } == [.text("one"), .text("two")])
            #expect(try await db.execute("UPDATE test SET name = ? WHERE id = ?", ["uno", 1]).rowsAffected == 1)
            #expect(try await db.execute("DELETE FROM test WHERE id = ?", [2]).rowsAffected == 1)
            #expect(try await db.execute("DELETE FROM test WHERE id = ?", [2]).rowsAffected == 0)
            #expect(try await db.execute("CREATE INDEX test_name ON test (name)").rowsAffected == 0)
        }
    }

    @Test("a parameter count that does not match the placeholders is a typed error")
    func parameterCount() async throws {
        try await withMemoryConnection { db in
            await expectSQLError(.parameterCountMismatch) { _ = try await db.query("SELECT ?, ?", [1]) }
            await expectSQLError(.parameterCountMismatch) { _ = try await db.query("SELECT 1", [1]) }
            let both = try await db.query("SELECT ?, ?", [1, 2])
            #expect(both[0].values == [1, 2])
        }
    }

    @Test("several statements run as a script without parameters, and are refused with them")
    func scripts() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute(
                """
                CREATE TABLE a (x INTEGER); -- first
                CREATE TABLE b (y INTEGER);
                INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);
                """)
            #expect(try await db.query("SELECT (SELECT x FROM a) + (SELECT y FROM b)")[0][0] == 3)
            await expectSQLError(.misuse) { _ = try await db.execute("INSERT INTO a VALUES (?); DROP TABLE b", [1]) }
            await expectSQLError(.misuse) { _ = try await db.query("SELECT 1; SELECT 2") }
            #expect(try await db.query("SELECT count(*) FROM b")[0][0] == 1)
        }
    }

    @Test("a syntax error is statement-class and the connection stays usable")
    func syntaxError() async throws {
        try await withMemoryConnection { db in
            let error = await expectSQLError(.syntaxError) { _ = try await db.query("SELEKT 1") }
            #expect(error?.kind == .statement)
            #expect(error?.backend == "sqlite")
            await expectSQLError(.syntaxError) { _ = try await db.query("SELECT * FROM missing_table") }
            #expect(db.isValid)
            let answer = try await db.query("SELECT 42")
            #expect(answer[0][0] == 42)
        }
    }

    @Test("constraint violations are typed, with SQLite's extended code")
    func constraints() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute(
                """
                CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent(id), n INTEGER CHECK (n > 0));
                INSERT INTO parent VALUES (1);
                """)
            let unique = await expectSQLError(.constraintViolation) { _ = try await db.execute("INSERT INTO parent VALUES (?)", [1]) }
            #expect(unique?.nativeCode == 1555)  // SQLITE_CONSTRAINT_PRIMARYKEY
            await expectSQLError(.constraintViolation) { _ = try await db.execute("INSERT INTO child VALUES (1, ?, 1)", [99]) }
            await expectSQLError(.constraintViolation) { _ = try await db.execute("INSERT INTO child VALUES (1, 1, ?)", [0]) }
            await expectSQLError(.constraintViolation) { _ = try await db.execute("INSERT INTO child VALUES (1, ?, 1)", [nil]) }
            #expect(db.isValid)
        }
    }

    @Test("errors never show bound values")
    func errorsHideValues() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE s (secret TEXT UNIQUE)")
            _ = try await db.execute("INSERT INTO s VALUES (?)", ["hunter2-secret"])
            let error = await expectSQLError(.constraintViolation) {
                _ = try await db.execute("INSERT INTO s VALUES (?)", ["hunter2-secret"])
            }
            #expect(error.map { !"\($0)".contains("hunter2") } == true)
        }
    }

    @Test("a thrown error rolls the transaction back; a returned value commits it")
    func transactions() async throws {
        struct Abort: Error {}
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE t (v INTEGER)")
            await #expect(throws: Abort.self) {
                try await db.withTransaction { tx in
                    _ = try await tx.execute("INSERT INTO t VALUES (?)", [1])
                    throw Abort()
                }
            }
            #expect(try await db.query("SELECT count(*) FROM t")[0][0] == 0)
            let inserted = try await db.withTransaction { tx in
                try await tx.execute("INSERT INTO t VALUES (?)", [2]).rowsAffected
            }
            #expect(inserted == 1)
            #expect(try await db.query("SELECT v FROM t")[0][0] == 2)
            // Explicit control works too, and a rollback with nothing open is harmless.
            try await db.begin()
            _ = try await db.execute("INSERT INTO t VALUES (3)")
            try await db.rollback()
            try await db.rollback()
            #expect(try await db.query("SELECT count(*) FROM t")[0][0] == 1)
        }
    }

    @Test("a prepared statement is reused with new parameters and refused after close")
    func preparedStatements() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE squares (n INTEGER PRIMARY KEY, sq INTEGER)")
            let insert = try await db.prepare("INSERT INTO squares VALUES (?, ?)")
            try await db.withTransaction { _ in
                for n in 1...1000 {
                    let inserted = try await insert.execute([.integer(Int64(n)), .integer(Int64(n * n))])
                    #expect(inserted.rowsAffected == 1)
                }
            }
            let lookup = try await db.prepare("SELECT sq FROM squares WHERE n = ?")
            #expect(try await lookup.query([12])[0][0] == 144)
            #expect(try await lookup.query([999])[0][0] == 998_001)
            await insert.close()
            await expectSQLError(.misuse) { _ = try await insert.execute([1001, 1]) }
            #expect(try await lookup.query([3])[0][0] == 9)
            await lookup.close()
        }
    }

    @Test("the statement cache reuses statements and evicts beyond its capacity")
    func statementCache() async throws {
        var config = SQLiteConfiguration.inMemory
        config.statementCacheCapacity = 4
        let db = try await SQLiteConnection.open(config)
        for _ in 0..<100 { _ = try await db.query("SELECT 1") }
        #expect(try await db.cachedStatementCount() == 1)
        for round in 0..<3 {
            for k in 0..<10 {
                #expect(try await db.query("SELECT ? + \(k)", [.integer(Int64(round))])[0][0] == .integer(Int64(round + k)))
            }
        }
        #expect(try await db.cachedStatementCount() == 4)
        await db.close()
    }

    @Test("after close every call fails with .closed and close is idempotent")
    func closed() async throws {
        let db = try await SQLiteConnection.open(.inMemory)
        await db.close()
        await db.close()
        #expect(!db.isValid)
        await expectSQLError(.closed) { _ = try await db.query("SELECT 1") }
    }
}

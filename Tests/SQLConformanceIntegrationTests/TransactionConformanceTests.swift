import Foundation
import SQLCore
import SQLTestSupport
import SQLiteBackend
import Synchronization
import TestServers
import TestSupport
import Testing

/// Transactions on every backend: savepoints for nested ones, options, and
/// the retry of a transaction the database undid after a conflict.
@Suite("Transactions on every backend", .timeLimit(.minutes(3)))
struct TransactionConformanceTests {
    struct Abort: Error {}

    @Test("nested transactions three deep are savepoints: an inner rollback undoes only its own rows", arguments: Backend.allCases)
    func nested(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "tx_nested")
        try await db.withTransaction { outer in
            _ = try await outer.execute("INSERT INTO \(table) (id, name) VALUES (1, 'outer')")
            try await outer.withTransaction { middle in
                _ = try await middle.execute("INSERT INTO \(table) (id, name) VALUES (2, 'middle')")
                await #expect(throws: Abort.self) {
                    try await middle.withTransaction { inner in
                        _ = try await inner.execute("INSERT INTO \(table) (id, name) VALUES (3, 'inner')")
                        throw Abort()
                    }
                }
                // A failed statement in a savepoint: rolled back to it, the transaction goes on (PostgreSQL too).
                await expectSQLError(.constraintViolation) {
                    try await middle.withTransaction { inner in
                        _ = try await inner.execute("INSERT INTO \(table) (id, name) VALUES (1, 'duplicate')")
                    }
                }
                _ = try await middle.execute("INSERT INTO \(table) (id, name) VALUES (4, 'after')")
            }
            await #expect(throws: SQLError.self) { try await outer.withTransaction(SQLTransactionOptions(readOnly: true)) { _ in } }
        }
        #expect(try await db.query("SELECT id FROM \(table) ORDER BY id").map { $0[0] } == [1, 2, 4])
        #expect(db.transactionStatus == .idle)
        // An outer rollback undoes what released savepoints kept.
        await #expect(throws: Abort.self) {
            try await db.withTransaction { outer in
                try await outer.withTransaction { inner in _ = try await inner.execute("INSERT INTO \(table) (id, name) VALUES (5, 'x')") }
                throw Abort()
            }
        }
        #expect(try await count(table, on: db) == 3)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test(
        "COMMIT is not sent for a transaction the closure ended or, on PostgreSQL, let fail: misuse, nothing committed",
        arguments: Backend.allCases)
    func noBlindCommit(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "tx_blind")
        await expectSQLError(.misuse) {
            try await db.withTransaction { tx in
                _ = try await tx.execute("INSERT INTO \(table) (id, name) VALUES (1, 'committed by the closure')")
                _ = try await tx.execute("COMMIT")
            }
        }
        if backend == .postgres {
            // A failed statement whose error the closure swallowed: PostgreSQL would turn COMMIT into a rollback.
            await expectSQLError(.misuse) {
                try await db.withTransaction { tx in
                    _ = try await tx.execute("INSERT INTO \(table) (id, name) VALUES (2, 'lost')")
                    _ = try? await tx.execute("SELEKT 1")
                }
            }
        }
        #expect(try await db.query("SELECT id FROM \(table) ORDER BY id").map { $0[0] } == [1])
        #expect(db.transactionStatus == .idle)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("SQLite: a read-only transaction on a session already read-only leaves it read-only")
    func sqliteQueryOnlySession() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tx-ro-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let setup = try await SQLiteDriver().connect(to: file)
        _ = try await setup.execute("CREATE TABLE t (id INTEGER)")
        await setup.close()
        let db = try await SQLiteDriver().onConnect(SQLSessionSetup(["PRAGMA query_only = 1"])).connect(to: file)
        try await db.withTransaction(SQLTransactionOptions(readOnly: true)) { tx in _ = try await tx.query("SELECT count(*) FROM t") }
        await expectSQLError(.readOnly) { try await db.execute("INSERT INTO t VALUES (1)") }
        await db.close()
    }

    @Test("a read-only transaction refuses writes, and the connection writes again after it", arguments: Backend.allCases)
    func readOnly(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "tx_read_only")
        try await db.withTransaction(SQLTransactionOptions(readOnly: true)) { tx in
            let rows = try await count(table, on: tx)
            #expect(rows == 0)
            // In a savepoint: on PostgreSQL the refused write fails the transaction unless undone.
            await expectSQLError(.readOnly) {
                try await tx.withTransaction { inner in _ = try await inner.execute("INSERT INTO \(table) (id, name) VALUES (1, 'no')") }
            }
        }
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (2, 'yes')")
        // The same after a read-only transaction that threw.
        await #expect(throws: Abort.self) { try await db.withTransaction(SQLTransactionOptions(readOnly: true)) { _ in throw Abort() } }
        _ = try await db.execute("INSERT INTO \(table) (id, name) VALUES (3, 'yes')")
        #expect(try await count(table, on: db) == 2)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("every isolation level starts a transaction; PostgreSQL reports the one asked for", arguments: Backend.allCases)
    func isolation(backend: Backend) async throws {
        let db = try await backend.connect()
        for level in SQLIsolationLevel.allCases {
            let seen = try await db.withTransaction(SQLTransactionOptions(isolation: level, deferrable: true)) { tx in
                backend == .postgres ? try await tx.query("SHOW transaction_isolation")[0][0].displayText : ""
            }
            if backend == .postgres { #expect(seen == level.sql.lowercased()) }
        }
        // MariaDB's SET TRANSACTION holds for the next transaction only: the session keeps its level.
        if backend == .mariadb {
            #expect(try await db.query("SELECT @@tx_isolation")[0][0] == "REPEATABLE-READ")
        }
        await db.close()
    }

    @Test(
        "a transaction the database undid after a conflict runs again, through a Database and on one connection",
        arguments: Backend.network, [true, false])
    func retryAfterConflict(backend: Backend, pooled: Bool) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        let database = Database(driver: driver, dsn: dsn)
        try await whileRunning(database) {
            let other = try await backend.connect()
            let table = try await freshTable(on: other, "tx_conflict")
            _ = try await other.execute("INSERT INTO \(table) (id, name) VALUES (1, 'a'), (2, 'a'), (3, 'a'), (4, 'a'), (5, 'a')")
            let runs = Atomic<Int>(0)
            let body: (any SQLConnection) async throws -> Void = { tx in
                let run = runs.add(1, ordering: .relaxed).newValue
                try await Self.loseConflict(backend, table: table, tx: tx, other: run == 1 ? other : nil)
            }
            let options = SQLTransactionOptions(isolation: .repeatableRead)
            if pooled {
                try await database.withTransaction(options, body)
                #expect(database.statistics.transactionRetries == 1)
            } else {
                let connection = try await backend.connect()
                try await connection.withTransaction(options, body)
                await connection.close()
            }
            #expect(runs.load(ordering: .relaxed) == 2)
            #expect(try await other.query("SELECT name FROM \(table) WHERE id = 1")[0][0] == "mine")
            // With retries off, the conflict is the caller's.
            runs.store(0, ordering: .relaxed)
            await expectSQLError(.transactionConflict) { try await database.withTransaction(options, retry: .never, body) }
            #expect(runs.load(ordering: .relaxed) == 1)
            _ = try await other.execute("DROP TABLE \(table)")
            await other.close()
        }
        await database.close()
    }

    /// The transaction's work: it sets row 1 to `mine`. When `other` is given, another connection
    /// makes it lose a conflict first: on PostgreSQL a concurrent update of the row it read
    /// (40001 under repeatable read); on MariaDB a deadlock, in which InnoDB undoes the transaction
    /// that changed fewer rows, this one (1213).
    static func loseConflict(_ backend: Backend, table: String, tx: any SQLConnection, other: (any SQLConnection)?) async throws {
        switch backend {
        case .postgres:
            _ = try await tx.query("SELECT name FROM \(table) WHERE id = 1")  // the snapshot is taken here
            if let other { _ = try await other.execute("UPDATE \(table) SET name = 'other' WHERE id = 1") }
            _ = try await tx.execute("UPDATE \(table) SET name = 'mine' WHERE id = 1")
        case .mariadb:
            guard let other else {
                _ = try await tx.execute("UPDATE \(table) SET name = 'mine' WHERE id = 1")
                return
            }
            _ = try await tx.query("SELECT name FROM \(table) WHERE id = 1 FOR UPDATE")
            try await other.begin()
            _ = try await other.execute("UPDATE \(table) SET name = 'other' WHERE id >= 2")
            // Waits for this transaction's lock on row 1; gets it when the deadlock undoes this one.
            let blocked = Task {
                _ = try await other.execute("UPDATE \(table) SET name = 'other' WHERE id = 1")
                try await other.commit()
            }
            defer { blocked.cancel() }
            do {
                _ = try await tx.execute("UPDATE \(table) SET name = 'mine' WHERE id = 2")
            } catch {
                try await blocked.value
                throw error
            }
            Issue.record("no deadlock")
        case .sqlite:
            Issue.record("no conflict is staged on SQLite")
        }
    }

    @Test("SQLite: BEGIN IMMEDIATE that finds another writer (busy) runs again once the writer is done")
    func sqliteBusyAtBegin() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tx-busy-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let writer = try await SQLiteDriver().connect(to: file)
        _ = try await writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        let contender = try await SQLiteDriver().connect(to: file + "?busy_timeout=20&transaction_mode=immediate")
        try await writer.begin()
        _ = try await writer.execute("INSERT INTO t VALUES (1)")
        let runs = Atomic<Int>(0)
        async let done: Void = contender.withTransaction(retry: SQLTransactionRetry(maxAttempts: 50)) { tx in
            runs.add(1, ordering: .relaxed)
            _ = try await tx.execute("INSERT INTO t VALUES (2)")
        }
        try await Task.sleep(for: .milliseconds(100))
        try await writer.commit()
        try await done
        #expect(try await count("t", on: writer) == 2)
        #expect(runs.load(ordering: .relaxed) == 1, "BEGIN failed, so the closure ran only once it succeeded")
        // Busy inside the closure is not retried: only a BEGIN that found the database busy is.
        runs.store(0, ordering: .relaxed)
        await expectSQLError(.busy) {
            try await contender.withTransaction { _ in
                runs.add(1, ordering: .relaxed)
                throw SQLError(.busy, message: "a statement found the database busy")
            }
        }
        #expect(runs.load(ordering: .relaxed) == 1)
        await contender.close()
        await writer.close()
    }

    @Test("PostgreSQL: a connection lost during COMMIT is commitOutcomeUnknown, counted, and never run again")
    func commitOutcomeUnknown() async throws {
        let (driver, dsn) = try await Backend.postgres.driverAndDSN()
        let database = Database(driver: driver, dsn: dsn)
        try await whileRunning(database) {
            let other = try await Backend.postgres.connect()
            let table = try await freshTable(on: other, "tx_unknown")
            // A deferred trigger makes COMMIT take 2 s: long enough to end the session under it.
            _ = try await other.execute(
                """
                CREATE OR REPLACE FUNCTION \(table)_slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$ LANGUAGE plpgsql;
                CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON \(table) DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION \(table)_slow();
                """)
            let runs = Atomic<Int>(0)
            let error = await expectSQLError(.commitOutcomeUnknown) {
                try await database.withTransaction { tx in
                    runs.add(1, ordering: .relaxed)
                    let pid = try await tx.query("SELECT pg_backend_pid()")[0][0]
                    _ = try await tx.execute("INSERT INTO \(table) (id, name) VALUES (1, 'maybe')")
                    Task {
                        try await Task.sleep(for: .milliseconds(300))
                        _ = try await other.query("SELECT pg_terminate_backend(?)", [pid])
                    }
                }
            }
            #expect(error?.isConnectionError == true)
            #expect((error?.underlying as? SQLError)?.isConnectionError == true)
            #expect(runs.load(ordering: .relaxed) == 1)
            #expect(database.statistics.commitOutcomesUnknown == 1)
            #expect(database.statistics.transactionRetries == 0)
            _ = try await other.execute("DROP TABLE \(table); DROP FUNCTION \(table)_slow()")
            await other.close()
        }
        await database.close()
    }
}

import ConnectionKit
import Foundation
import SQLCore
import SQLiteBackend
import TestSupport
import Testing

/// `Database` (the pooled handle of SQLCore) against real SQLite files.
@Suite("Database on SQLite", .timeLimit(.minutes(2)))
struct DatabaseTests {
    /// A database on a fresh file, with run() going; closed and removed afterwards.
    func withDatabase<T>(
        clock: AnyClock = .continuous,
        _ configure: (inout DatabaseConfiguration) -> Void = { _ in },
        _ body: (Database) async throws -> T
    ) async throws -> T {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        var config = DatabaseConfiguration(name: "test-db")
        configure(&config)
        let db = Database(
            driver: SQLiteDriver(), dsn: "\(folder.path("db.sqlite"))?busy_timeout=5000", configuration: config, clock: clock)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await db.run() }
            // Wait until run() has started, so that waits can time out.
            try await waitUntil("the database's run() is running") { db.isRunning }
            do {
                let result = try await body(db)
                await db.close()
                try await group.waitForAll()
                return result
            } catch {
                await db.close()
                throw error
            }
        }
    }

    @Test("query and execute borrow and return connections; idle ones are reused")
    func conveniences() async throws {
        try await withDatabase { db in
            _ = try await db.execute("CREATE TABLE t (v INTEGER)")
            for i in 0..<20 { _ = try await db.execute("INSERT INTO t VALUES (?)", [.integer(Int64(i))]) }
            let rows = try await db.query("SELECT count(*) FROM t")
            #expect(rows[0][0] == 20)
            let stats = db.statistics
            #expect(stats.openConnections == 1 && stats.inUse == 0 && stats.idle == 1)
        }
    }

    @Test("withTransaction commits on return, rolls back on throw, and returns the connection clean")
    func transactions() async throws {
        struct Abort: Error {}
        try await withDatabase({ $0.maxOpen = 1 }) { db in
            _ = try await db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
            _ = try await db.execute("INSERT INTO accounts VALUES (1, 100), (2, 0)")
            await #expect(throws: Abort.self) {
                try await db.withTransaction { tx in
                    _ = try await tx.execute("UPDATE accounts SET balance = balance - 50 WHERE id = 1")
                    throw Abort()
                }
            }
            try await db.withTransaction { tx in
                _ = try await tx.execute("UPDATE accounts SET balance = balance - 30 WHERE id = 1")
                _ = try await tx.execute("UPDATE accounts SET balance = balance + 30 WHERE id = 2")
            }
            let balances = try await db.query("SELECT balance FROM accounts ORDER BY id").map { $0[0] }
            #expect(balances == [70, 30])
            // The one connection came back outside any transaction: BEGIN works again.
            try await db.withTransaction { tx in _ = try await tx.query("SELECT 1") }
            #expect(db.statistics.errorClosed == 0)
        }
    }

    @Test("a connection that saw a connection-class error is discarded, never reused")
    func brokenConnectionsAreDiscarded() async throws {
        try await withDatabase { db in
            await #expect(throws: SQLError.self) {
                try await db.withConnection { connection in
                    await connection.close()  // from now on every call fails with .closed (connection-class)
                    _ = try await connection.query("SELECT 1")
                }
            }
            #expect(db.statistics.errorClosed == 1)
            let two = try await db.query("SELECT 2")
            #expect(two[0][0] == 2)
            // A statement-class error keeps the connection.
            await #expect(throws: SQLError.self) { try await db.query("SELEKT") }
            #expect(db.statistics.errorClosed == 1)
        }
    }

    @Test(
        "maxOpen makes callers wait; waitTimeout (30 s by default), on the database's clock, bounds the wait exactly; stats count both",
        arguments: [Duration.milliseconds(100), nil])
    func waits(configured: Duration?) async throws {
        let clock = ManualClock()
        let bound = configured ?? .seconds(30)
        try await withDatabase(
            clock: AnyClock(clock),
            {
                $0.maxOpen = 1
                if let configured { $0.waitTimeout = configured }
            }
        ) { db in
            let waiterDone = Locked(false)
            let holding = Task {
                try await db.withConnection { _ in
                    try await waitUntil("the waiter has timed out") { waiterDone.withLock { $0 } }
                }
            }
            try await waitUntil("the holder has its connection") { !(db.statistics.inUse == 0) }
            let waiter = Task {
                defer { waiterDone.withLock { $0 = true } }
                _ = try await db.query("SELECT 1")
            }
            // The pool's timer waits for the waiter's deadline, the bound from now on the manual clock.
            try await waitUntil("the waiter's deadline is armed") { clock.earliestDeadline == ManualClock.Instant(offset: bound) }
            clock.advance(by: bound - .milliseconds(1))
            await Task.yield()
            #expect(!waiterDone.withLock { $0 })
            clock.advance(by: .milliseconds(1))
            do {
                try await waiter.value
                Issue.record("expected a wait timeout")
            } catch let error as SQLError {
                #expect(error.code == .poolTimeout && error.kind == .statement)
                #expect(error.description.contains("test-db"))
            }
            try await holding.value
            let stats = db.statistics
            #expect(stats.waitCount == 1)
            #expect(stats.waitDuration == bound)
        }
    }

    @Test("the pool's own failures are SQLErrors: a wait that times out, a closed database")
    func poolFailuresAreSQLErrors() async throws {
        try await withDatabase({
            $0.maxOpen = 1
            $0.waitTimeout = .milliseconds(20)
        }) { db in
            try await db.withConnection { _ in
                do throws(SQLError) {
                    _ = try await db.query("SELECT 1")
                    Issue.record("a second borrower got a connection past maxOpen = 1")
                } catch {
                    #expect(error.code == .poolTimeout && error.kind == .statement)
                }
            }
            await db.close()
            do {
                try await db.withConnection { _ in }
                Issue.record("a closed database lent a connection")
            } catch let error as SQLError {
                #expect(error.code == .closed && error.kind == .statement)
            }
        }
    }

    @Test("maxIdle closes returned connections beyond it")
    func maxIdle() async throws {
        try await withDatabase({ $0.maxIdle = 1 }) { db in
            // Three connections held at once; two of them exceed maxIdle on return.
            try await db.withConnection { _ in
                try await db.withConnection { _ in
                    try await db.withConnection { _ in #expect(db.statistics.inUse == 3) }
                }
            }
            #expect(db.statistics.maxIdleClosed == 2)
            #expect(db.statistics.idle == 1)
        }
    }

    @Test("maxLifetime, on the database's clock, retires old connections and not young ones")
    func maxLifetime() async throws {
        let clock = ManualClock()
        try await withDatabase(clock: AnyClock(clock), { $0.maxLifetime = .milliseconds(200) }) { db in
            _ = try await db.query("SELECT 1")
            clock.advance(by: .milliseconds(150))  // younger than the lifetime less its 10% jitter
            _ = try await db.query("SELECT 1")
            #expect(db.statistics.maxLifetimeClosed == 0)
            clock.advance(by: .milliseconds(150))  // older than the lifetime plus its jitter
            _ = try await db.query("SELECT 1")
            #expect(db.statistics.maxLifetimeClosed == 1)
        }
    }

    @Test("1,000 tasks through a 10-connection Database on one file")
    func manyTasks() async throws {
        try await withDatabase({
            $0.maxOpen = 10
            $0.maxIdle = 10
        }) { db in
            _ = try await db.execute("CREATE TABLE hits (n INTEGER)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<1000 {
                    group.addTask { _ = try await db.execute("INSERT INTO hits VALUES (?)", [.integer(Int64(i))]) }
                }
                try await group.waitForAll()
            }
            #expect(try await db.query("SELECT count(DISTINCT n) FROM hits")[0][0] == 1000)
            #expect(db.statistics.openConnections <= 10)
        }
    }
}

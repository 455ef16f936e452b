import Foundation
import MariaDBBackend
import PostgresBackend
import SQLCore
import SQLTestSupport
import TestSupport
import Testing

/// Deadlines (`SQLDeadline`, a call's `timeout:`, a `Database`'s default) on every backend:
/// they end statements, pool waits and opens with `.timeout`.
@Suite("Deadlines on every backend", .timeLimit(.minutes(3)))
struct DeadlineConformanceTests {
    @Test(
        "a deadline during a statement cancels it on the server: .timeout promptly, and the connection goes on", arguments: Backend.allCases
    )
    func duringStatement(backend: Backend) async throws {
        let db = try await backend.connect()
        let started = ContinuousClock.now
        let error = await expectSQLError(.timeout) {
            try await SQLDeadline.withTimeout(.milliseconds(300)) { try await db.query(backend.slowQuery(seconds: 20)) }
        }
        #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(5)))
        #expect((error?.underlying as? SQLError)?.code == .cancelled, "\(String(describing: error))")
        // The server stopped the statement: the connection answers at once.
        if db.isValid { #expect(try await db.query("SELECT 7")[0][0] == 7) }
        // A statement that ends in time is untouched, and nothing lingers after the scope.
        let fast = try await SQLDeadline.withTimeout(.seconds(30)) { try await db.query("SELECT 8") }
        #expect(fast[0][0] == 8)
        await db.close()
    }

    @Test("a Database call's timeout and the default bound the statement; the earlier deadline wins", arguments: Backend.allCases)
    func databaseTimeouts(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        var configuration = DatabaseConfiguration(name: "deadlines")
        configuration.defaultTimeout = .milliseconds(300)
        let database = Database(driver: driver, dsn: dsn, configuration: configuration)
        try await whileRunning(database) {
            var started = ContinuousClock.now
            await expectSQLError(.timeout) { try await database.query(backend.slowQuery(seconds: 20)) }
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(5)))
            started = ContinuousClock.now
            await expectSQLError(.timeout) {
                try await database.withTransaction(timeout: .milliseconds(200)) { tx in
                    _ = try await tx.query(backend.slowQuery(seconds: 20))
                }
            }
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(5)))
            // An enclosing scope that ends first wins over the call's longer limit.
            started = ContinuousClock.now
            await expectSQLError(.timeout) {
                try await SQLDeadline.withTimeout(.milliseconds(200)) {
                    try await database.execute(backend.slowQuery(seconds: 20), timeout: .seconds(30))
                }
            }
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(5)))
            let answer = try await database.query("SELECT 1", timeout: .seconds(30))[0][0]
            #expect(answer == 1)
        }
        await database.close()
    }

    @Test(
        "a deadline during a pool wait fails the wait with .timeout, long before the pool's own wait timeout", arguments: Backend.allCases)
    func duringPoolWait(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        var configuration = DatabaseConfiguration(name: "one")
        configuration.maxOpen = 1
        configuration.waitTimeout = nil  // the deadline alone bounds the wait
        let database = Database(driver: driver, dsn: dsn, configuration: configuration)
        try await whileRunning(database) {
            let holding = AsyncGate(parties: 2)
            let holder = Task {
                try await database.withConnection { _ in
                    await holding.arrive()
                    try await Task.sleep(for: .seconds(3))
                }
            }
            await holding.arrive()
            let started = ContinuousClock.now
            let error = await expectSQLError(.timeout) { try await database.query("SELECT 1", timeout: .milliseconds(200)) }
            #expect(error?.kind == .statement)
            #expect(ContinuousClock.now - started < .milliseconds(2500))
            holder.cancel()
            _ = await holder.result
        }
        await database.close()
    }

    @Test("a statement whose deadline passed before it was sent is not sent", arguments: Backend.allCases)
    func passedBeforeSending(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = try await freshTable(on: db, "deadline_unsent")
        let error = await expectSQLError(.timeout) {
            try await SQLDeadline.withDeadline(.now - .seconds(1)) {
                try await db.execute("INSERT INTO \(table) (id, name) VALUES (1, 'never')")
            }
        }
        #expect(error?.kind == .statement)
        #expect(db.isValid)
        #expect(try await count(table, on: db) == 0)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("a deadline during an open to a server that never answers ends it", arguments: Backend.network)
    func duringOpen(backend: Backend) async throws {
        let listener = try SilentListener()  // the kernel completes the handshake, nobody speaks
        defer { withExtendedLifetime(listener) {} }  // listening until the test ends
        let port = listener.port
        let started = ContinuousClock.now
        await expectSQLError(oneOf: [.timeout, .connectionFailed]) {
            try await SQLDeadline.withTimeout(.milliseconds(300)) {
                switch backend {
                case .postgres: _ = try await PostgresDriver().connect(to: "host=127.0.0.1 port=\(port) user=app")
                default: _ = try await MariaDBDriver().connect(to: "mysql://app:pw@127.0.0.1:\(port)/app")
                }
            }
        }
        let waited = started.duration(to: .now)
        #expect(waited < TestTiming.bound(.seconds(3)), "waited \(waited), not the 300 ms deadline")
    }
}

import ConnectionKit
import Foundation
import SQLCore
import SQLTestSupport
import Synchronization
import TestSupport
import Testing

/// A `Database`'s session setup, warm-up and leak detection, on every backend.
@Suite("Session setup, warm-up and leak reports on every backend", .timeLimit(.minutes(3)))
struct SessionAndPoolConformanceTests {
    /// A session setting, the statement that sets it, and the query that reads it back.
    static func setting(_ backend: Backend) -> (set: String, read: String, expected: String) {
        switch backend {
        case .postgres: ("SET TIME ZONE 'Pacific/Auckland'", "SHOW TimeZone", "Pacific/Auckland")
        case .mariadb: ("SET time_zone = '+05:30'", "SELECT @@session.time_zone", "+05:30")
        case .sqlite: ("PRAGMA cache_size = -4321", "PRAGMA cache_size", "-4321")
        }
    }

    @Test("onConnect runs on every pooled connection before its first use: each of four held at once sees it", arguments: Backend.allCases)
    func everyConnection(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        let setting = Self.setting(backend)
        let setups = Atomic<Int>(0)
        let setup = SQLSessionSetup([setting.set]).followed(
            by: SQLSessionSetup { _ in setups.add(1, ordering: .relaxed) })
        let database = Database(driver: driver, dsn: dsn, onConnect: setup)
        try await whileRunning(database) {
            let seen = try await withThrowingTaskGroup(of: String.self) { group in
                let gate = AsyncGate(parties: 4)
                for _ in 0..<4 {
                    group.addTask {
                        try await database.withConnection { connection in
                            await gate.arrive()  // four distinct connections, held together
                            return try await connection.query(setting.read)[0][0].displayText
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(seen == Array(repeating: setting.expected, count: 4))
            #expect(setups.load(ordering: .relaxed) == 4)
            #expect(try await database.query(setting.read)[0][0].displayText == setting.expected)
        }
        await database.close()
        // The same through the driver: SQLDriver.onConnect.
        let connection = try await driver.onConnect(SQLSessionSetup([setting.set])).connect(to: dsn)
        #expect(try await connection.query(setting.read)[0][0].displayText == setting.expected)
        await connection.close()
    }

    @Test("a failing setup fails the open with its statement-class error, and closes the connection", arguments: Backend.allCases)
    func failingSetup(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        let database = Database(driver: driver, dsn: dsn, onConnect: SQLSessionSetup(["SELEKT 1"]))
        try await whileRunning(database) {
            let error = await expectSQLError(.syntaxError) { try await database.query("SELECT 1") }
            #expect(error?.kind == .statement)
            #expect(error?.message.hasPrefix("session setup: ") == true)
            #expect(database.statistics.openConnections == 0)
        }
        await database.close()
    }

    @Test(
        "minIdle opens connections ahead of use while the database runs, and opens them again after they are gone",
        arguments: Backend.allCases)
    func warmUp(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        var configuration = DatabaseConfiguration(name: "warm")
        configuration.minIdle = 3
        configuration.maxIdleTime = .seconds(60)
        let database = Database(driver: driver, dsn: dsn, configuration: configuration)
        try await whileRunning(database) {
            try await waitUntil("3 idle connections", timeout: TestTiming.bound(.seconds(10))) { database.statistics.idle == 3 }
            // A broken connection is replaced.
            await #expect(throws: SQLError.self) {
                try await database.withConnection { _ in throw SQLError(.connectionLost, message: "pretend the link broke") }
            }
            try await waitUntil("back to 3 idle", timeout: TestTiming.bound(.seconds(10))) { database.statistics.idle == 3 }
            #expect(database.statistics.errorClosed == 1)
        }
        await database.close()
    }

    @Test("a connection held past leakThreshold is logged once, with the file and line that borrowed it", arguments: [Backend.sqlite])
    func leakReport(backend: Backend) async throws {
        let (driver, dsn) = try await backend.driverAndDSN()
        var configuration = DatabaseConfiguration(name: "leaky")
        configuration.leakThreshold = .milliseconds(100)
        let logs = LogCapture()
        let database = Database(driver: driver, dsn: dsn, configuration: configuration, logger: logs.logger())
        let line = #line + 2
        try await whileRunning(database) {
            try await database.withConnection { _ in try await Task.sleep(for: .milliseconds(600)) }
            try await database.withConnection { _ in }  // quick: never reported
        }
        await database.close()
        let reports = logs.all.filter { $0.contains("leak threshold") }
        #expect(reports.count == 1, "\(logs.all)")
        #expect(reports.first?.contains("SessionAndPoolConformanceTests.swift:\(line)") == true, "\(reports)")
    }
}

/// Lets `parties` tasks through once all of them arrived.
final class AsyncGate: Sendable {
    private let state: Locked<(arrived: Int, waiters: [CheckedContinuation<Void, Never>])>
    private let parties: Int

    init(parties: Int) {
        self.parties = parties
        state = Locked((0, []))
    }

    func arrive() async {
        await withCheckedContinuation { continuation in
            let release = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.arrived += 1
                state.waiters.append(continuation)
                guard state.arrived >= parties else { return [] }
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in release { waiter.resume() }
        }
    }
}

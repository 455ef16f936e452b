import ConnectionKit
import Foundation
import SQLCore
import SQLTestSupport
import SQLiteBackend
import Synchronization
import TestSupport
import Testing

@Suite("SQLite: concurrency and cancellation", .timeLimit(.minutes(2)))
struct SQLiteConcurrencyTests {
    /// If any SQLite call ran on the cooperative pool (2 threads on this
    /// machine), 16 queries busy for about a second each would starve the
    /// ticker for most of the run: its wake-up would queue behind the workers.
    /// On their own threads they only share the CPU with it. The bound is half
    /// the run's own length, not a fixed time: the rest of the suite runs in
    /// parallel on the same 2 cores, and under ThreadSanitizer its instrumented
    /// tasks keep the pool busy enough to make the ticker 2.3 s late in a run
    /// of about 10 s, while a pool blocked by SQLite leaves it late by nearly
    /// the whole run.
    @Test("many tasks on many connections leave the cooperative pool free for a ticking task")
    func cooperativePoolStaysFree() async throws {
        let connections = try await withThrowingTaskGroup(of: SQLiteConnection.self) { group in
            for _ in 0..<8 { group.addTask { try await SQLiteConnection.open(.inMemory) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let ticker = Ticker()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await ticker.run() }
            try await withThrowingTaskGroup(of: Void.self) { workers in
                // 16 tasks on 8 connections: two per connection, queued in order.
                for i in 0..<16 {
                    let db = connections[i % 8]
                    workers.addTask {
                        let rows = try await db.query(busyQuery(iterations: 1_500_000))
                        #expect(rows[0][0] == .integer(1_500_000 * 1_500_001 / 2))
                    }
                }
                try await workers.waitForAll()
            }
            ticker.stop.store(true, ordering: .relaxed)
            try await group.waitForAll()
        }
        let runMs = (ContinuousClock.now - started).inMilliseconds
        for db in connections { await db.close() }
        let worst = ticker.worstLatenessMs.load(ordering: .relaxed)
        #expect(ticker.ticks.load(ordering: .relaxed) > 20)
        #expect(Double(worst) < runMs / 2, "the ticker was late by \(worst) ms in a run of \(Int(runMs)) ms")
    }

    @Test("cancelling the task interrupts a long query promptly, and the connection stays usable")
    func cancellation() async throws {
        try await withMemoryConnection { db in
            let task = Task { try await db.query(longRunningQuery) }
            try await Task.sleep(for: .milliseconds(150))
            let started = ContinuousClock.now
            task.cancel()
            await expectSQLError(.cancelled) { _ = try await task.value }
            // The query would run for minutes: 5 s proves the interrupt, and leaves room for the first
            // seconds of the parallel pass, when every suite starts its servers on two cores (2.13 s seen).
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(5)))
            #expect(db.isValid)
            #expect(try await db.query("SELECT 7")[0][0] == 7)
        }
    }

    @Test("a cancelled task's queued statement never runs, and the one running is not interrupted by it")
    func cancellationOfQueuedWork() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE log (v INTEGER)")
            // The flag is set just before the query is queued, with no suspension in between.
            let started = Atomic<Bool>(false)
            let running = Task {
                started.store(true, ordering: .sequentiallyConsistent)
                // Long enough (about 0.2 s here, more under load) to outlast the two short sleeps below by far.
                return try await db.query(busyQuery(iterations: 3_000_000))
            }
            try await waitUntil("the long query is queued") { started.load(ordering: .sequentiallyConsistent) }
            try await Task.sleep(for: .milliseconds(20))
            let queued = Task { try await db.execute("INSERT INTO log VALUES (1)") }
            try await Task.sleep(for: .milliseconds(20))
            queued.cancel()
            await expectSQLError(.cancelled) { _ = try await queued.value }
            #expect(try await running.value[0][0] == .integer(3_000_000 * 3_000_001 / 2))
            #expect(try await db.query("SELECT count(*) FROM log")[0][0] == 0)
        }
    }

    @Test("a task that is already cancelled does not start its statement")
    func alreadyCancelled() async throws {
        try await withMemoryConnection { db in
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await db.execute("CREATE TABLE never (v INTEGER)")
            }
            await expectSQLError(.cancelled) { _ = try await task.value }
            await expectSQLError(.syntaxError) { _ = try await db.query("SELECT * FROM never") }
        }
    }

    @Test("rollback runs even for a cancelled task")
    func rollbackWhenCancelled() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE t (v INTEGER)")
            try await db.begin()
            _ = try await db.execute("INSERT INTO t VALUES (1)")
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                try await db.rollback()
            }
            try await task.value
            #expect(try await db.query("SELECT count(*) FROM t")[0][0] == 0)
        }
    }

    @Test("1,000 concurrent statements from many tasks on one file, each on its own connection group")
    func manyTasks() async throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        let path = folder.path("shared.db")
        let setup = try await SQLiteDriver().connect(to: path)
        _ = try await setup.execute("CREATE TABLE hits (task INTEGER)")
        let connections = try await withThrowingTaskGroup(of: SQLiteConnection.self) { group in
            for _ in 0..<4 { group.addTask { try await SQLiteConnection.open(SQLiteConfiguration(dsn: "\(path)?busy_timeout=10000")) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<1000 {
                let db = connections[i % connections.count]
                group.addTask { _ = try await db.execute("INSERT INTO hits VALUES (?)", [.integer(Int64(i))]) }
            }
            try await group.waitForAll()
        }
        #expect(try await setup.query("SELECT count(DISTINCT task) FROM hits")[0][0] == 1000)
        for db in connections { await db.close() }
        await setup.close()
    }
}

/// A task that wants to wake every 10 ms and records how late it wakes.
final class Ticker: Sendable {
    let stop = Atomic<Bool>(false)
    let worstLatenessMs = Atomic<Int>(0)
    let ticks = Atomic<Int>(0)

    func run() async throws {
        let clock = ContinuousClock()
        while !stop.load(ordering: .relaxed) {
            let before = clock.now
            try await Task.sleep(for: .milliseconds(10))
            let late = (clock.now - before - .milliseconds(10)).components
            let lateMs = Int(late.seconds * 1000 + late.attoseconds / 1_000_000_000_000_000)
            worstLatenessMs.max(lateMs, ordering: .relaxed)
            ticks.add(1, ordering: .relaxed)
        }
    }
}

import ConnectionKit
import Metrics
import MetricsTestKit
import Synchronization
import TestSupport
import Testing

/// A connection the tests can count: it knows whether it is in use or closed.
final class TestConnection: Sendable {
    let id: Int
    let inUse = Atomic<Bool>(false)
    let closed = Atomic<Bool>(false)
    init(id: Int) { self.id = id }
}

/// A counter tasks can share.
final class Tally: Sendable {
    let value = Atomic<Int>(0)
}

/// Dials TestConnections, optionally failing some dials, and counts everything.
final class TestDialer: Sendable {
    let dials = Atomic<Int>(0)
    let closes = Atomic<Int>(0)
    let live = Atomic<Int>(0)
    let failEvery: Int

    struct DialRefused: Error {}

    init(failEvery: Int = 0) { self.failEvery = failEvery }

    var lifecycle: ConnectionLifecycle<TestConnection, DialRefused> {
        ConnectionLifecycle(
            dial: { () async throws(DialRefused) -> TestConnection in
                let n = self.dials.add(1, ordering: .relaxed).newValue
                await Task.yield()
                if self.failEvery > 0, n % self.failEvery == 0 { throw DialRefused() }
                self.live.add(1, ordering: .relaxed)
                return TestConnection(id: n)
            },
            close: { connection in
                let wasClosed = connection.closed.exchange(true, ordering: .relaxed)
                #expect(!wasClosed, "closed twice")
                self.closes.add(1, ordering: .relaxed)
                self.live.subtract(1, ordering: .relaxed)
            },
            ping: { connection in
                let isClosed = connection.closed.load(ordering: .relaxed)
                #expect(!isClosed)
            })
    }
}

/// The pool's refusal in what a borrow (in a task) threw, if it refused.
func refusal(_ error: any Error) -> ConnectionKitError? { (error as? ManagedFailure<TestDialer.DialRefused>)?.refusal }

/// Runs `body` while the pool's `run()` runs, then closes the pool and checks run() returned.
func withRunningPool<T>(
    _ pool: ConnectionPool<TestConnection, ContinuousClock, TestDialer.DialRefused>, _ body: () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await pool.run() }
        // run() marks itself running at once; a borrow succeeds from then on.
        try await waitUntil("run() is running") { pool.isRunning }
        let result = try await body()
        await pool.close()
        try await group.waitForAll()
        return result
    }
}

@Suite("Connection pool under concurrency", .timeLimit(.minutes(2)))
struct ConnectionPoolTests {
    @Test("1,000 tasks over a 10-connection pool: never more than 10 open, none shared, none leaked")
    func thousandTasks() async throws {
        let dialer = TestDialer()
        var config = ConnectionPoolConfiguration(name: "p", idleSize: 10)
        config.maxOpen = 10
        config.getTimeout = .seconds(30)
        let pool = ConnectionPool(configuration: config, lifecycle: dialer.lifecycle)
        let maxLive = Tally()
        try await withRunningPool(pool) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<1000 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            let wasInUse = connection.inUse.exchange(true, ordering: .relaxed)
                            #expect(!wasInUse, "handed out twice")
                            maxLive.value.max(dialer.live.load(ordering: .relaxed), ordering: .relaxed)
                            await Task.yield()
                            connection.inUse.store(false, ordering: .relaxed)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let stats = pool.statistics
            #expect(stats.inUse == 0 && stats.waiting == 0 && stats.opening == 0)
            #expect(stats.open <= 10)
        }
        #expect(maxLive.value.load(ordering: .relaxed) <= 10)
        #expect(dialer.dials.load(ordering: .relaxed) <= 10)
        #expect(dialer.live.load(ordering: .relaxed) == 0, "connections leaked after close")
    }

    @Test("injected dial failures reach their callers and leak no capacity")
    func dialFailures() async throws {
        let dialer = TestDialer(failEvery: 3)
        var config = ConnectionPoolConfiguration(name: "p", idleSize: 2)
        config.maxOpen = 4
        config.getTimeout = .seconds(30)
        let pool = ConnectionPool(configuration: config, lifecycle: dialer.lifecycle)
        let failures = Tally()
        try await withRunningPool(pool) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<300 {
                    group.addTask {
                        do throws(ManagedFailure<TestDialer.DialRefused>) {
                            // Breaking every connection forces a dial for nearly every borrow.
                            try await pool.withConnection(isBroken: { _ in true }) { _ throws(TestDialer.DialRefused) in
                                throw TestDialer.DialRefused()
                            }
                        } catch {
                            if error.failure != nil { failures.value.add(1, ordering: .relaxed) }
                        }
                    }
                }
            }
            let stats = pool.statistics
            #expect(stats.opening == 0 && stats.inUse == 0 && stats.waiting == 0)
        }
        #expect(failures.value.load(ordering: .relaxed) == 300)
        #expect(dialer.dials.load(ordering: .relaxed) >= 300)
        #expect(dialer.live.load(ordering: .relaxed) == 0)
    }

    @Test("a cancelled waiter leaves the queue at once")
    func cancelledWaiter() async throws {
        let dialer = TestDialer()
        var config = ConnectionPoolConfiguration(name: "p", idleSize: 1)
        config.maxOpen = 1
        let pool = ConnectionPool(configuration: config, lifecycle: dialer.lifecycle)
        try await withRunningPool(pool) {
            let held = try await pool.borrow()
            let waiter = Task { try await pool.borrow() }
            try await waitUntil("the waiter is queued") { !(pool.statistics.waiting == 0) }
            let started = ContinuousClock.now
            waiter.cancel()
            do {
                _ = try await waiter.value
                Issue.record("the cancelled waiter got a connection")
            } catch {
                #expect(refusal(error)?.code == .cancelled)
            }
            // The held connection is never returned: only the cancel ends the wait (2.8 s once, under ThreadSanitizer).
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(2)))
            #expect(pool.statistics.waiting == 0)
            await pool.release(held)
            #expect(pool.available == 1)
        }
    }

    @Test("GetTimeout fails a waiter with the pool's figures")
    func getTimeout() async throws {
        let dialer = TestDialer()
        var config = ConnectionPoolConfiguration(name: "orders-db", idleSize: 1)
        config.maxOpen = 1
        config.getTimeout = .milliseconds(50)
        let pool = ConnectionPool(configuration: config, lifecycle: dialer.lifecycle)
        try await withRunningPool(pool) {
            let held = try await pool.borrow()
            do throws(ManagedFailure<TestDialer.DialRefused>) {
                _ = try await pool.borrow()
                Issue.record("expected a timeout")
            } catch {
                #expect(error.refusal?.code == .poolTimeout)
                #expect(error.refusal?.description.contains("orders-db") == true)
                #expect(error.refusal?.description.contains("in use 1, idle 0, opening 0, waiting 0, cap 1") == true)
            }
            await pool.release(held)
        }
    }

    @Test("shutdown while waiters wait: every waiter fails, the held connection closes on return, run() returns")
    func shutdownWithWaiters() async throws {
        let dialer = TestDialer()
        var config = ConnectionPoolConfiguration(name: "p", idleSize: 1)
        config.maxOpen = 1
        let pool = ConnectionPool(configuration: config, lifecycle: dialer.lifecycle)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            try await waitUntil("run() is running") { pool.isRunning }
            let held = try await pool.borrow()
            let waiters = (0..<5).map { _ in Task { try await pool.borrow() } }
            try await waitUntil("five waiters are queued") { !(pool.statistics.waiting < 5) }
            await pool.close()
            for waiter in waiters {
                do {
                    _ = try await waiter.value
                    Issue.record("a waiter got a connection after shutdown")
                } catch {
                    #expect(refusal(error)?.code == .shutdown)
                }
            }
            #expect(dialer.live.load(ordering: .relaxed) == 1)
            await pool.release(held)
            #expect(dialer.live.load(ordering: .relaxed) == 0)
            await pool.close()  // twice is safe
            try await group.waitForAll()
        }
    }

    @Test("without run() a borrow that would wait fails at once; one that needs no wait works")
    func withoutRun() async throws {
        let dialer = TestDialer()
        var config = ConnectionPoolConfiguration(name: "p", idleSize: 1)
        config.maxOpen = 1
        let pool = ConnectionPool(configuration: config, lifecycle: dialer.lifecycle)
        let held = try await pool.borrow()
        let refused = await #expect(throws: ManagedFailure<TestDialer.DialRefused>.self) { try await pool.borrow() }
        #expect(refused?.refusal?.code == .notRunning)
        await pool.release(held)
        let again = try await pool.borrow()
        #expect(again.connection.id == held.connection.id)
        await pool.release(again)
        await pool.close()
    }

    @Test("pings and warm-up run from run() on the manual clock; metrics count opens and closes")
    func timersOnManualClock() async throws {
        let dialer = TestDialer()
        let metrics = TestMetrics()
        var config = ConnectionPoolConfiguration(name: "warm", idleSize: 2)
        config.minIdle = 2
        config.warmUpInterval = .milliseconds(10)
        config.pingInterval = .every(.seconds(1))
        let clock = ManualClock()
        let pool = ConnectionPool(
            configuration: config, lifecycle: dialer.lifecycle, clock: clock,
            observer: MetricsObserver(source: "warm", factory: metrics))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            try await waitUntil("the first warm-up dial finished") { !(dialer.live.load(ordering: .relaxed) < 1) }
            await clock.waitForSleepers()
            clock.advance(by: .milliseconds(10))
            try await waitUntil("two connections are warm") { !(pool.available < 2) }
            #expect(dialer.dials.load(ordering: .relaxed) == 2)
            await pool.close()
            try await group.waitForAll()
        }
        #expect(dialer.live.load(ordering: .relaxed) == 0)
        let opened = try metrics.expectCounter("clustersql_connections_opened_total", [("source", "warm")])
        #expect(opened.totalValue == 2)
        let closed = try metrics.expectCounter("clustersql_connections_closed_total", [("source", "warm"), ("reason", "shutdown")])
        #expect(closed.totalValue == 2)
    }
}

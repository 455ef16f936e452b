import Synchronization
import TestServers
import Testing

@testable import ConnectionKit

@Suite("Connection manager", .timeLimit(.minutes(2)))
struct ConnectionManagerTests {
    typealias Machine = ManagerStateMachine<String, ManualClock.Instant>
    static func at(_ ms: Int) -> ManualClock.Instant { .init(offset: .milliseconds(ms)) }
    static let exact = BackoffPolicy(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)

    @Test("the first dial is retried with backoff, and success resets the backoff")
    func firstDialRetried() {
        var m = Machine(name: "m", backoff: Self.exact, seed: 1)
        guard case .dial = m.start() else {
            Issue.record("expected a dial")
            return
        }
        m.dialFailed("refused", now: Self.at(0))
        guard case .sleep(let until) = m.nextAction() else {
            Issue.record("expected a sleep")
            return
        }
        #expect(until == Self.at(100))
        guard case .sleep = m.timerFired(now: Self.at(50)) else {
            Issue.record("too early")
            return
        }
        guard case .dial = m.timerFired(now: Self.at(100)) else {
            Issue.record("expected a dial")
            return
        }
        m.dialFailed("refused", now: Self.at(100))
        guard case .sleep(let second) = m.nextAction() else {
            Issue.record("expected a sleep")
            return
        }
        #expect(second == Self.at(300))
        _ = m.timerFired(now: Self.at(300))
        #expect(m.dialSucceeded("c1") == nil)
        guard case .success(let (connection, generation)) = m.take() else {
            Issue.record("expected a connection")
            return
        }
        #expect(connection == "c1" && generation == 1)
        // After a success the backoff starts over.
        #expect(m.reportError(generation: 1, error: "reset") == "c1")
        m.dialFailed("refused", now: Self.at(1000))
        guard case .sleep(let afterReset) = m.nextAction() else {
            Issue.record("expected a sleep")
            return
        }
        #expect(afterReset == Self.at(1100))
    }

    @Test("an error from an old generation never kills the new connection")
    func generations() {
        var m = Machine(name: "m", backoff: Self.exact, seed: 1)
        _ = m.start()
        _ = m.dialSucceeded("first")
        #expect(m.reportError(generation: 1, error: "reset") == "first")
        _ = m.dialSucceeded("second")
        #expect(m.reportError(generation: 1, error: "late error from the first") == nil)
        guard case .success(let (connection, generation)) = m.take() else {
            Issue.record("expected a connection")
            return
        }
        #expect(connection == "second" && generation == 2)
    }

    @Test("take is a typed error while down and after close; a dial finishing after close is handed back")
    func unavailableAndClosed() {
        var m = Machine(name: "m", backoff: Self.exact, seed: 1)
        guard case .failure(let connecting) = m.take() else {
            Issue.record("expected unavailable")
            return
        }
        #expect(connecting.code == .unavailable)
        _ = m.start()
        #expect(m.close() == nil)
        #expect(m.dialSucceeded("late") == "late")
        guard case .failure(let closed) = m.take() else {
            Issue.record("expected shutdown")
            return
        }
        #expect(closed.code == .shutdown)
        guard case .stop = m.nextAction() else {
            Issue.record("expected stop")
            return
        }
    }

    /// Dials "c1", "c2", ... after failing the first `failures` dials; can be made to hang.
    final class Dialer: Sendable {
        let attempts = Atomic<Int>(0)
        let closed = Locked<[String]>([])
        let failures: Int
        let hangFirst: Bool
        struct Refused: Error {}

        init(failures: Int, hangFirst: Bool = false) {
            self.failures = failures
            self.hangFirst = hangFirst
        }

        func lifecycle(clock: ManualClock) -> ConnectionLifecycle<String> {
            ConnectionLifecycle(
                dial: {
                    let n = self.attempts.add(1, ordering: .relaxed).newValue
                    if self.hangFirst, n == 1 { try await clock.sleep(for: .seconds(3600)) }
                    if n <= self.failures { throw Refused() }
                    return "c\(n)"
                },
                close: { connection in self.closed.withLock { $0.append(connection) } })
        }
    }

    @Test("run() retries the first dial with backoff on the manual clock, reconnects after an error, closes once")
    func shellLifecycle() async throws {
        let clock = ManualClock()
        let dialer = Dialer(failures: 2)
        let manager = ConnectionManager(
            name: "cache", lifecycle: dialer.lifecycle(clock: clock), backoff: Self.exact, dialTimeout: nil,
            clock: clock, seed: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await manager.run() }
            #expect(throws: ConnectionKitError.self) { try manager.take() }
            await clock.waitForSleepers()
            clock.advance(by: .milliseconds(100))  // second attempt fails
            try await waitUntil("the second dial was attempted") { !(dialer.attempts.load(ordering: .relaxed) < 2) }
            await clock.waitForSleepers()
            clock.advance(by: .milliseconds(200))  // third attempt succeeds
            try await waitUntil("the third dial connected") { (try? manager.take()) != nil }
            let lease = try manager.take()
            #expect(lease.connection == "c3" && lease.generation == 1)

            // The write helper reports a connection-class error; the manager re-dials at once.
            struct Reset: Error {}
            await #expect(throws: Reset.self) { try await manager.withConnection { _ in throw Reset() } }
            try await waitUntil("generation 2 is connected") { !((try? manager.take())?.generation != 2) }
            #expect(dialer.closed.withLock { $0 } == ["c3"])
            // A late error against generation 1 leaves generation 2 alone.
            await manager.reportError(lease, error: Reset())
            #expect(try manager.take().connection == "c4")

            await manager.close()
            await manager.close()
            #expect(dialer.closed.withLock { $0 } == ["c3", "c4"])
            do throws(ConnectionKitError) {
                _ = try manager.take()
                Issue.record("take after close")
            } catch {
                #expect(error.code == .shutdown)
            }
            try await group.waitForAll()
        }
    }

    @Test("a dial that hangs times out and is retried")
    func dialTimeout() async throws {
        let clock = ManualClock()
        let dialer = Dialer(failures: 0, hangFirst: true)
        let manager = ConnectionManager(
            name: "slow", lifecycle: dialer.lifecycle(clock: clock), backoff: Self.exact, dialTimeout: .seconds(2),
            clock: clock, seed: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await manager.run() }
            await clock.waitForSleepers(2)  // the hanging dial and the timeout
            clock.advance(by: .seconds(2))
            // The backoff sleeper (2 s + 100 ms), not the cancelled dial's, must be the one waiting.
            try await waitUntil("the backoff delay is scheduled") {
                clock.earliestDeadline == ManualClock.Instant(offset: .milliseconds(2100))
            }
            clock.advance(by: .milliseconds(100))
            try await waitUntil("the second dial connected") { (try? manager.take()) != nil }
            #expect(try manager.take().connection == "c2")
            await manager.close()
            try await group.waitForAll()
        }
    }
}

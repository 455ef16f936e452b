/// A clock that only moves when told to, for deterministic tests of code that
/// sleeps: sleepers wake when ``advance(by:)`` passes their deadline.
public final class ManualClock: Clock, Sendable {
    /// A point on the manual clock: the time advanced since it was created.
    public typealias Instant = OffsetInstant<ManualClock>

    private struct Sleeper {
        let id: Int
        let deadline: Instant
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID = 0
        /// Sleepers woken by ``advance(by:)`` whose `sleep` has not returned yet.
        var resuming = 0
    }

    private let state = Locked(State())
    /// The sleepers' tasks: woken with `true`, or `false` when cancelled.
    private let waiters = ParkedWaiters<Bool>()

    /// Creates a clock at offset zero.
    public init() {}

    /// The current instant.
    public var now: Instant { state.withLock { $0.now } }
    /// The resolution: one nanosecond.
    public var minimumResolution: Duration { .nanoseconds(1) }
    /// How many tasks are sleeping on the clock (tests wait for this before advancing).
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }
    /// How many sleepers ``advance(by:)`` woke whose `sleep` has not returned yet: their tasks are
    /// about to run, so a test driving virtual time waits for this to be zero before it moves on.
    public var resumingCount: Int { state.withLock { $0.resuming } }

    /// Sleeps until ``advance(by:)`` reaches `deadline`; throws `CancellationError` when cancelled.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { s -> Int? in
            guard deadline > s.now else { return nil }
            s.nextID += 1
            s.sleepers.append(Sleeper(id: s.nextID, deadline: deadline))
            return s.nextID
        }
        guard let id else { return try Task.checkCancellation() }
        let woken = await waiters.park(id) { [state] in
            state.withLock { s -> Bool? in
                guard let index = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }  // woken already
                s.sleepers.remove(at: index)
                return false
            }
        }
        guard woken else { throw CancellationError() }
        state.withLock { $0.resuming -= 1 }
    }

    /// The earliest deadline a task sleeps until, if any.
    public var earliestDeadline: Instant? { state.withLock { $0.sleepers.map(\.deadline).min() } }

    /// Moves time forward and wakes every sleeper whose deadline has come, earliest first.
    public func advance(by duration: Duration) {
        let woken = state.withLock { s -> [Sleeper] in
            s.now = s.now.advanced(by: duration)
            let now = s.now
            let due = s.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            s.sleepers.removeAll { $0.deadline <= now }
            s.resuming += due.count
            return due
        }
        for sleeper in woken { waiters.resume(sleeper.id, with: true) }
    }

    /// Waits (yielding, up to about a second of real time) until at least `count` tasks sleep on the clock.
    public func waitForSleepers(_ count: Int = 1) async {
        for _ in 0..<10_000 where sleeperCount < count {
            try? await Task.sleep(for: .microseconds(100))
        }
    }

    /// Waits (yielding, up to about five seconds of real time) until exactly `count` tasks sleep on
    /// the clock, zero included: the tasks under test have parked on their timers, or left them all.
    public func waitForSleepers(exactly count: Int) async {
        for _ in 0..<50_000 where sleeperCount != count {
            try? await Task.sleep(for: .microseconds(100))
        }
    }
}

import ConnectionKit
import Logging

/// Notices connections held past a threshold (``DatabaseConfiguration/leakThreshold``) and
/// logs each once, at warning level, with the file and line that borrowed it.
///
/// A borrow costs one dictionary insert under a lock, and its return one removal; a
/// watcher (run by ``Database/run()``) looks through the borrowed ones every half threshold.
package final class LeakDetector: Sendable {
    /// One borrowed connection.
    package struct Borrow: Sendable {
        /// Where it was borrowed.
        package var file: String
        package var line: UInt
        /// When.
        package var since: AnyClock.Instant
        /// Whether it was reported already.
        package var reported = false
    }

    package let threshold: Duration
    private let clock: AnyClock
    private let logger: Logger
    private let database: String
    private let borrows = Locked<[ObjectIdentifier: Borrow]>([:])

    package init(threshold: Duration, clock: AnyClock, logger: Logger, database: String) {
        self.threshold = threshold
        self.clock = clock
        self.logger = logger
        self.database = database
    }

    /// Notes that `connection` was borrowed at `file`:`line`.
    package func borrowed(_ connection: AnyObject, file: StaticString, line: UInt) {
        let borrow = Borrow(file: "\(file)", line: line, since: clock.now)
        borrows.withLock { $0[ObjectIdentifier(connection)] = borrow }
    }

    /// Notes that `connection` came back; one held past the threshold that the watcher had not
    /// reported yet (a busy machine may run it late) is reported now.
    package func returned(_ connection: AnyObject) {
        guard let borrow = borrows.withLock({ $0.removeValue(forKey: ObjectIdentifier(connection)) }), !borrow.reported else { return }
        let held = borrow.since.duration(to: clock.now)
        if held >= threshold { report(borrow, held: held, stillHeld: false) }
    }

    /// The borrows held past the threshold and not yet reported, now marked reported.
    package func overdue() -> [Borrow] {
        let now = clock.now
        return borrows.withLock { borrows in
            var found: [Borrow] = []
            for (key, borrow) in borrows where !borrow.reported && borrow.since.duration(to: now) >= threshold {
                borrows[key]?.reported = true
                found.append(borrow)
            }
            return found
        }
    }

    /// Looks for overdue borrows every half threshold (at least every 10 ms) and logs each,
    /// until the task is cancelled.
    package func watch() async {
        let interval = max(threshold / 2, .milliseconds(10))
        while true {
            do {
                try await clock.sleep(for: interval)
            } catch {
                return
            }
            let now = clock.now
            for borrow in overdue() { report(borrow, held: borrow.since.duration(to: now), stillHeld: true) }
        }
    }

    /// Logs one borrow held past the threshold, at warning level, with where it was borrowed.
    private func report(_ borrow: Borrow, held: Duration, stillHeld: Bool) {
        logger.warning(
            stillHeld
                ? "a connection was held longer than the leak threshold; not returned yet"
                : "a connection was held longer than the leak threshold before it was returned",
            metadata: [
                "database": "\(database)", "borrowed_at": "\(borrow.file):\(borrow.line)", "held": "\(held)",
                "threshold": "\(threshold)",
            ])
    }
}

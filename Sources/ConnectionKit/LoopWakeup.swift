/// Lets a background loop sleep until a deadline or until another task wakes
/// it, whichever comes first. A wake while the loop is busy is remembered, so
/// the next sleep returns at once (no lost wake-ups).
package final class LoopWakeup<WakeClock: Clock>: Sendable where WakeClock.Duration == Duration, WakeClock.Instant: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, Never>?
        var pending = false
    }

    private let state = Locked(State())
    private let clock: WakeClock

    /// A wake-up on `clock`.
    package init(clock: WakeClock) { self.clock = clock }

    /// Sleeps until `deadline` (forever when `nil`) or the next ``wake()``; returns at once
    /// when a wake is pending or the task is cancelled.
    package func sleep(until deadline: WakeClock.Instant?) async {
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { timer in
                if let deadline {
                    timer.addTask { [clock] in
                        if (try? await clock.sleep(until: deadline, tolerance: nil)) != nil { self.wake() }
                    }
                }
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let wakeNow = state.withLock { s -> Bool in
                        if s.pending || Task.isCancelled {
                            s.pending = false
                            return true
                        }
                        s.continuation = continuation
                        return false
                    }
                    if wakeNow { continuation.resume() }
                }
                timer.cancelAll()
            }
        } onCancel: {
            self.wake()
        }
    }

    /// Wakes the sleeping loop, or makes its next sleep return at once.
    package func wake() {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let c = s.continuation else {
                s.pending = true
                return nil
            }
            s.continuation = nil
            return c
        }
        continuation?.resume()
    }
}

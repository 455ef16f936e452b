/// A FIFO lock for async code: one holder at a time, waiters resumed in order,
/// a waiter whose task is cancelled leaves the queue at once.
///
/// Connections use it to run one statement at a time over one socket.
package final class AsyncLock: Sendable {
    private struct State {
        var held = false
        /// The waiters' numbers, in arrival order.
        var queue: [Int] = []
        var nextID = 0
    }

    private let state = Locked(State())
    private let waiters = ParkedWaiters<Bool>()

    /// Creates an unlocked lock.
    package init() {}

    /// How many tasks wait in line.
    var waiting: Int { state.withLock { $0.queue.count } }

    /// Takes the lock, waiting in line; returns `false` (without the lock) when
    /// cancelled while waiting, unless not `cancellable`.
    package func lock(cancellable: Bool = true) async -> Bool {
        let waiter = state.withLock { s -> Int? in
            guard s.held else {
                s.held = true
                return nil
            }
            s.nextID &+= 1
            s.queue.append(s.nextID)
            return s.nextID
        }
        guard let waiter else { return true }
        return await waiters.park(waiter) { [state] in
            // Leaves the line unless the lock was handed over already (then it keeps it).
            guard cancellable else { return nil }
            return state.withLock { s -> Bool? in
                guard let index = s.queue.firstIndex(of: waiter) else { return nil }
                s.queue.remove(at: index)
                return false
            }
        }
    }

    /// Releases the lock to the next waiter, if any.
    package func unlock() {
        let next = state.withLock { s -> Int? in
            guard !s.queue.isEmpty else {
                s.held = false
                return nil
            }
            return s.queue.removeFirst()
        }
        if let next { waiters.resume(next, with: true) }
    }
}

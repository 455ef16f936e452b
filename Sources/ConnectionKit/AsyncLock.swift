/// A FIFO lock for async code: one holder at a time, waiters resumed in order,
/// a waiter whose task is cancelled leaves the queue at once.
///
/// Connections use it to run one statement at a time over one socket.
public final class AsyncLock: Sendable {
    private struct State {
        var held = false
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID: UInt64 = 0
    }

    private let state = Locked(State())

    /// Creates an unlocked lock.
    public init() {}

    /// Takes the lock, waiting in line; returns `false` (without the lock) when
    /// cancelled while waiting, unless not `cancellable`.
    public func lock(cancellable: Bool = true) async -> Bool {
        let id = state.withLock { s -> UInt64 in
            s.nextID &+= 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let granted = state.withLock { s -> Bool? in
                    if !s.held {
                        s.held = true
                        return true
                    }
                    if cancellable, Task.isCancelled { return false }
                    s.waiters.append((id, continuation))
                    return nil
                }
                if let granted { continuation.resume(returning: granted) }
            }
        } onCancel: {
            guard cancellable else { return }
            let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: false)
        }
    }

    /// Releases the lock to the next waiter, if any.
    public func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard !s.waiters.isEmpty else {
                s.held = false
                return nil
            }
            return s.waiters.removeFirst().continuation
        }
        next?.resume(returning: true)
    }
}

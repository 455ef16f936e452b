/// Tasks parked until a value is handed to them by number: the lock, the
/// continuation per waiter and the cancellation handler that every shell with
/// waiters needs (the pool's borrowers, the lock's queue, the Sentinel
/// client's master waiters), written once.
///
/// Who decides which waiter gets what (a state machine, a queue) stays with
/// the shell; this only delivers. A value handed to a waiter that has not
/// parked yet waits for it, so the two may happen in either order. Each
/// number is parked once and handed one value.
@usableFromInline
package final class ParkedWaiters<Value: Sendable>: Sendable {
    @usableFromInline
    struct State: Sendable {
        @usableFromInline var parked: [Int: CheckedContinuation<Value, Never>] = [:]
        /// Values handed over before their waiter parked.
        @usableFromInline var early: [Int: Value] = [:]

        @inlinable init() {}
    }

    @usableFromInline let state = Locked(State())

    /// No waiters yet.
    @inlinable package init() {}

    /// Parks the task until ``resume(_:with:)`` hands waiter `id` its value (at once when it was
    /// handed already). When the task is cancelled, `cancelled` is asked for the value to leave
    /// with: `nil` keeps it parked, for a value already on its way (the shell decided first).
    @inlinable
    package func park(_ id: Int, cancelled: @escaping @Sendable () -> Value?) async -> Value {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value, Never>) in
                let ready = state.withLock { s -> Value? in
                    if let value = s.early.removeValue(forKey: id) { return value }
                    assert(s.parked[id] == nil, "waiter \(id) parked twice")
                    s.parked[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            if let value = cancelled() { self.resume(id, with: value) }
        }
    }

    /// Hands `value` to waiter `id`: resumes it now, or when it parks.
    @inlinable
    package func resume(_ id: Int, with value: Value) {
        let continuation = state.withLock { s -> CheckedContinuation<Value, Never>? in
            if let continuation = s.parked.removeValue(forKey: id) { return continuation }
            assert(s.early[id] == nil, "waiter \(id) handed two values")
            s.early[id] = value
            return nil
        }
        continuation?.resume(returning: value)
    }
}

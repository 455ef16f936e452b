import Synchronization

/// A connection that can tell it must not be used any more (it saw a
/// connection-class failure or was closed): what ``SharedConnections`` needs.
@usableFromInline package protocol BreakableConnection: Sendable {
    /// Whether the connection failed or was closed.
    var isBroken: Bool { get }
}

/// Automatic pipelining: a few connections borrowed from a pool and shared by
/// every task. Each request takes the next slot, round-robin; a slot holds a
/// ready lease, or is being filled (the tasks that come meanwhile wait for
/// that one dial), or is empty. A broken connection is given back (and so
/// closed) by whoever sees it first, and its slot is filled again on next use.
///
/// The pool behind it is reached only through the closures each call passes:
/// `acquire` borrows (and prepares) a connection, `release` gives one back.
@usableFromInline
package final class SharedConnections<Connection: BreakableConnection, Instant: InstantProtocol & Sendable, Failure: Error>: Sendable {
    /// A connection borrowed from the pool.
    @usableFromInline package typealias Lease = PooledConnection<Connection, Instant>

    @usableFromInline enum SlotState: Sendable {
        case empty
        case connecting([UnsafeContinuation<Result<Lease, Failure>?, Never>])
        case ready(Lease)
    }

    @usableFromInline let slots: [Locked<SlotState>]
    @usableFromInline let turn = Atomic<Int>(0)
    /// Set by a closing ``releaseAll(closing:release:)``: a dial that finishes afterwards
    /// gives its connection back instead of keeping it, and no slot keeps one again.
    @usableFromInline let closed = Atomic<Bool>(false)

    @usableFromInline let closedError: @Sendable () -> Failure

    /// `count` shared slots (at least one); `closedError` is what a request gets once they closed.
    @usableFromInline package init(count: Int, closedError: @escaping @Sendable () -> Failure) {
        slots = (0..<max(1, count)).map { _ in Locked(.empty) }
        self.closedError = closedError
    }

    /// How many connections are shared.
    @usableFromInline package var count: Int { slots.count }

    /// The next slot's connection: the ready one without an async call (the usual
    /// case), else one `acquire` borrows for the slot, or the one another task is
    /// borrowing for it. Hand a broken one to ``discard(_:slot:release:)``.
    @inlinable
    package func lease(
        acquire: () async throws(Failure) -> Lease, release: (Lease) async -> Void
    ) async throws(Failure) -> (lease: Lease, slot: Int) {
        let index = turn.add(1, ordering: .relaxed).newValue % slots.count
        let ready = slots[index].withLock { state -> Lease? in
            if case .ready(let lease) = state, !lease.connection.isBroken { lease } else { nil }
        }
        if let ready { return (ready, index) }
        return (try await fill(index, acquire: acquire, release: release), index)
    }

    @usableFromInline enum Next {
        case use(Lease)
        case dial
        case wait
        case replace(Lease)
    }

    @usableFromInline
    func fill(
        _ index: Int, acquire: () async throws(Failure) -> Lease, release: (Lease) async -> Void
    ) async throws(Failure) -> Lease {
        let slot = slots[index]
        while true {
            if closed.load(ordering: .relaxed) { throw closedError() }
            let next = slot.withLock { state -> Next in
                switch state {
                case .ready(let lease) where !lease.connection.isBroken:
                    return .use(lease)
                case .ready(let lease):
                    state = .connecting([])
                    return .replace(lease)
                case .connecting:
                    return .wait
                case .empty:
                    state = .connecting([])
                    return .dial
                }
            }
            switch next {
            case .use(let lease):
                return lease
            case .wait:
                // The dial of another task: its outcome is ours too. A slot found empty
                // here (that dial failed a moment ago) is looked at again.
                let outcome: Result<Lease, Failure>? = await withUnsafeContinuation { continuation in
                    let now = slot.withLock { state -> Result<Lease, Failure>?? in
                        switch state {
                        case .connecting(var waiters):
                            waiters.append(continuation)
                            state = .connecting(waiters)
                            return .none
                        case .ready(let lease): return .some(.success(lease))
                        case .empty: return .some(nil)
                        }
                    }
                    if let now { continuation.resume(returning: now) }
                }
                if let outcome { return try outcome.get() }
            case .replace(let broken):
                await release(broken)
                return try await dial(slot, acquire: acquire, release: release)
            case .dial:
                return try await dial(slot, acquire: acquire, release: release)
            }
        }
    }

    /// Fills `slot` with a connection from `acquire` and hands the outcome to the tasks
    /// waiting for it; a connection dialed after the shared connections closed is given
    /// back, and everyone gets the closed error.
    @usableFromInline
    func dial(
        _ slot: Locked<SlotState>, acquire: () async throws(Failure) -> Lease, release: (Lease) async -> Void
    ) async throws(Failure) -> Lease {
        var result: Result<Lease, Failure>
        do throws(Failure) {
            result = .success(try await acquire())
        } catch {
            result = .failure(error)
        }
        if case .failure = result, Task.isCancelled {
            // This task's cancellation is not the waiters' failure: they try again themselves.
            let waiters = slot.withLock { state in Self.empty(&state) }
            for waiter in waiters { waiter.resume(returning: nil) }
            return try result.get()
        }
        // `closed` is read under the slot's lock, which a closing releaseAll takes after
        // setting it: a connection is either kept here and released there, or given back here.
        let (waiters, kept) = slot.withLock { state -> ([UnsafeContinuation<Result<Lease, Failure>?, Never>], Bool) in
            let waiters = Self.empty(&state)
            if case .success(let lease) = result {
                guard !closed.load(ordering: .relaxed) else { return (waiters, false) }
                state = .ready(lease)
            }
            return (waiters, true)
        }
        if !kept, case .success(let lease) = result {
            await release(lease)
            result = .failure(closedError())
        }
        // The tasks that waited for this dial share its outcome: one failed dial fails them at once.
        for waiter in waiters { waiter.resume(returning: .some(result)) }
        return try result.get()
    }

    /// Empties a slot being filled and returns the tasks waiting for it.
    @usableFromInline
    static func empty(_ state: inout SlotState) -> [UnsafeContinuation<Result<Lease, Failure>?, Never>] {
        guard case .connecting(let waiters) = state else { return [] }
        state = .empty
        return waiters
    }

    /// Empties `slot` if it still holds `lease` (a connection that broke), and gives it back.
    @usableFromInline package func discard(_ lease: Lease, slot: Int, release: (Lease) async -> Void) async {
        let owned = slots[slot].withLock { state -> Bool in
            guard case .ready(let current) = state, current.id == lease.id else { return false }
            state = .empty
            return true
        }
        if owned { await release(lease) }
    }

    /// Gives every ready connection back (a pool asked to empty itself). With
    /// `closing` (a pool that closes), a dial still in flight gives its connection
    /// back too when it finishes, and no slot keeps a connection again.
    @usableFromInline package func releaseAll(closing: Bool = false, release: (Lease) async -> Void) async {
        if closing { closed.store(true, ordering: .relaxed) }
        for slot in slots {
            let lease = slot.withLock { state -> Lease? in
                guard case .ready(let lease) = state else { return nil }
                state = .empty
                return lease
            }
            if let lease { await release(lease) }
        }
    }
}

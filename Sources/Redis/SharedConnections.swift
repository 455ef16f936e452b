import ConnectionKit
import RESP
import Synchronization

/// Automatic pipelining: a few connections borrowed from the pool and shared by
/// every task. Each command goes to the next connection, round-robin; commands
/// arriving together leave in one write (the connections coalesce flushes).
/// A connection that breaks is put back (and so closed) and replaced on next use.
final class SharedConnections: Sendable {
    private enum SlotState {
        case empty
        case connecting([UnsafeContinuation<Result<RedisPool.Lease, RedisError>, Never>])
        case ready(RedisPool.Lease)
    }

    private let slots: [Locked<SlotState>]
    private let turn = Atomic<Int>(0)

    init(count: Int) {
        slots = (0..<count).map { _ in Locked(.empty) }
    }

    @inline(__always)  // one async frame less per command on the hot path
    func send(_ command: RedisCommand, through pool: RedisPool) async throws(RedisError) -> RESPValue {
        let index = turn.add(1, ordering: .relaxed).newValue % slots.count
        // The usual case, a ready connection, without an async call.
        let lease: RedisPool.Lease
        if let ready = readyLease(index) {
            lease = ready
        } else {
            lease = try await self.lease(index, from: pool)
        }
        let result = await lease.connection.send(command, expecting: .one)
        if case .failure(let error) = result, error.isConnectionError { await discard(lease, index, to: pool) }
        return try result.get()
    }

    /// Puts every shared connection back into the pool.
    func releaseAll(to pool: RedisPool) async {
        for slot in slots {
            let lease = slot.withLock { state -> RedisPool.Lease? in
                guard case .ready(let lease) = state else { return nil }
                state = .empty
                return lease
            }
            if let lease { await pool.put(lease) }
        }
    }

    private func readyLease(_ index: Int) -> RedisPool.Lease? {
        slots[index].withLock { state in
            if case .ready(let lease) = state, !lease.connection.isBroken { lease } else { nil }
        }
    }

    private enum Next {
        case use(RedisPool.Lease)
        case dial
        case wait
        case replace(RedisPool.Lease)
    }

    private func lease(_ index: Int, from pool: RedisPool) async throws(RedisError) -> RedisPool.Lease {
        let slot = slots[index]
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
            let result = await withUnsafeContinuation { continuation in
                let ready = slot.withLock { state -> Result<RedisPool.Lease, RedisError>? in
                    switch state {
                    case .connecting(var waiters):
                        waiters.append(continuation)
                        state = .connecting(waiters)
                        return nil
                    case .ready(let lease):
                        return .success(lease)
                    case .empty:
                        return .failure(RedisError(.poolUnavailable, message: "the shared connection was released"))
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
            return try result.get()
        case .replace(let broken):
            await pool.put(broken)
            return try await connect(slot, from: pool)
        case .dial:
            return try await connect(slot, from: pool)
        }
    }

    private func connect(_ slot: Locked<SlotState>, from pool: RedisPool) async throws(RedisError) -> RedisPool.Lease {
        let result: Result<RedisPool.Lease, RedisError>
        do throws(RedisError) {
            let lease = try await pool.get()
            await lease.connection.coalesceFlushes()
            result = .success(lease)
        } catch {
            result = .failure(error)
        }
        let waiters = slot.withLock { state -> [UnsafeContinuation<Result<RedisPool.Lease, RedisError>, Never>] in
            guard case .connecting(let waiters) = state else { return [] }
            state = if case .success(let lease) = result { .ready(lease) } else { .empty }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
        return try result.get()
    }

    private func discard(_ lease: RedisPool.Lease, _ index: Int, to pool: RedisPool) async {
        let owned = slots[index].withLock { state -> Bool in
            guard case .ready(let current) = state, current.id == lease.id else { return false }
            state = .empty
            return true
        }
        if owned { await pool.put(lease) }
    }
}

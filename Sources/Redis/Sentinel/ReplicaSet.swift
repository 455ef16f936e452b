import ConnectionKit

/// The replicas of one master that passed the checks (listed by the sentinels
/// without `s_down`, `o_down` or `disconnected`, and `ROLE` said a connected
/// replica), each with its pool, chosen per ``ReplicaBalancing``.
final class ReplicaSet: Sendable {
    private struct State: Sendable {
        var chooser: ReplicaChooser<RedisPool>
        /// Whether anybody read from replicas: until then they are not looked for.
        var wanted = false
        /// After ``removeAll()`` (the client closed) no replica is added again.
        var closed = false
    }

    private let state: Locked<State>

    init(balancing: ReplicaBalancing) {
        state = Locked(State(chooser: ReplicaChooser(balancing: balancing)))
    }

    /// Whether replica reads were asked for.
    var wanted: Bool { state.withLock { $0.wanted } }

    /// The replica the next read goes to; `nil` when none serves. Marks replicas wanted.
    func next() -> (address: SentinelAddress, pool: RedisPool)? {
        state.withLock { state in
            state.wanted = true
            return state.chooser.choose()
        }
    }

    /// A read chosen by ``next()`` ended.
    func finished(_ address: SentinelAddress, after elapsed: Duration, ok: Bool) {
        let now = ContinuousClock.now
        state.withLock { $0.chooser.finished(address, after: elapsed, ok: ok, at: now) }
    }

    /// The addresses served now, in order.
    var addresses: [SentinelAddress] { state.withLock { $0.chooser.order } }

    /// Makes `verified` the set: pools for new replicas come from `makePool`; the
    /// pools of replicas no longer verified are returned, to be closed.
    func replace(with verified: [SentinelAddress], makePool: (SentinelAddress) -> RedisPool) -> (added: [RedisPool], removed: [RedisPool]) {
        state.withLock { state in
            state.closed ? ([], []) : state.chooser.replace(with: verified, makePool: makePool)
        }
    }

    /// Takes a replica out at once (a read found it broken); the next check may bring it back.
    func drop(_ address: SentinelAddress) -> RedisPool? {
        state.withLock { $0.chooser.remove(address) }
    }

    /// Takes every replica out for good (the client closes); returns their pools, to be closed.
    func removeAll() -> [RedisPool] {
        state.withLock { state in
            state.closed = true
            return state.chooser.removeAll()
        }
    }
}

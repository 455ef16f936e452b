import ConnectionKit

/// The replicas of one master that passed the checks (listed by the sentinels
/// without `s_down`, `o_down` or `disconnected`, and `ROLE` said a connected
/// replica), each with its pool; reads go round-robin over them.
final class ReplicaSet: Sendable {
    private struct State: Sendable {
        var pools: [SentinelAddress: RedisPool] = [:]
        var order: [SentinelAddress] = []
        var turn = 0
        /// Whether anybody read from replicas: until then they are not looked for.
        var wanted = false
    }

    private let state = Locked(State())

    /// Whether replica reads were asked for; asking marks them wanted.
    var wanted: Bool { state.withLock { $0.wanted } }

    /// The next replica's address and pool, round-robin; `nil` when none serves.
    func next() -> (address: SentinelAddress, pool: RedisPool)? {
        state.withLock { state in
            state.wanted = true
            guard !state.order.isEmpty else { return nil }
            state.turn = (state.turn + 1) % state.order.count
            let address = state.order[state.turn]
            return (address, state.pools[address]!)
        }
    }

    /// The addresses served now, in order.
    var addresses: [SentinelAddress] { state.withLock { $0.order } }

    /// Makes `verified` the set: pools for new replicas come from `makePool`; the
    /// pools of replicas no longer verified are returned, to be closed.
    func replace(with verified: [SentinelAddress], makePool: (SentinelAddress) -> RedisPool) -> (added: [RedisPool], removed: [RedisPool]) {
        state.withLock { state in
            let keep = Set(verified)
            let removed = state.order.filter { !keep.contains($0) }.compactMap { state.pools.removeValue(forKey: $0) }
            var added: [RedisPool] = []
            for address in verified.sorted() where state.pools[address] == nil {
                let pool = makePool(address)
                state.pools[address] = pool
                added.append(pool)
            }
            state.order = verified.sorted()
            return (added, removed)
        }
    }

    /// Takes a replica out at once (a read found it broken); the next check may bring it back.
    func drop(_ address: SentinelAddress) -> RedisPool? {
        state.withLock { state in
            state.order.removeAll { $0 == address }
            return state.pools.removeValue(forKey: address)
        }
    }

    /// Takes every replica out; returns their pools, to be closed.
    func removeAll() -> [RedisPool] {
        state.withLock { state in
            defer {
                state.pools.removeAll()
                state.order.removeAll()
            }
            return Array(state.pools.values)
        }
    }
}

import ConnectionKit

/// How replica reads pick among the replicas that pass the checks.
public enum ReplicaBalancing: String, Sendable, Hashable, CaseIterable {
    /// In turn.
    case roundRobin = "round-robin"
    /// The cheaper of two random replicas, by their peak-EWMA round trip times
    /// their reads in flight (power of two choices, as the SQL clusters balance):
    /// a replica that turns slow gets little traffic from its first slow reply on.
    case latency
}

/// The choice of a replica without I/O: the replicas served, their measured round
/// trips and reads in flight, and the rule of ``ReplicaBalancing``.
struct ReplicaChooser<Pool: Sendable>: Sendable {
    struct Replica: Sendable {
        var pool: Pool
        var latency: PeakEWMA<ContinuousClock.Instant>
        var inFlight = 0
    }

    let balancing: ReplicaBalancing
    private(set) var replicas: [SentinelAddress: Replica] = [:]
    /// The addresses, sorted, so that round-robin has an order.
    private(set) var order: [SentinelAddress] = []
    private var turn = 0
    private var random: SeededRandom

    init(balancing: ReplicaBalancing, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.balancing = balancing
        random = SeededRandom(seed: seed)
    }

    /// The replica the next read goes to (counted in flight until ``finished(_:after:ok:at:)``); `nil` when none serves.
    mutating func choose() -> (address: SentinelAddress, pool: Pool)? {
        guard !order.isEmpty else { return nil }
        let address: SentinelAddress
        switch balancing {
        case .roundRobin:
            turn = (turn + 1) % order.count
            address = order[turn]
        case .latency:
            let first = order[Int(random.next() % UInt64(order.count))]
            guard order.count > 1 else {
                address = first
                break
            }
            var second = order[Int(random.next() % UInt64(order.count - 1))]
            if second == first { second = order[order.count - 1] }
            address = cost(first) <= cost(second) ? first : second
        }
        replicas[address]!.inFlight += 1
        return (address, replicas[address]!.pool)
    }

    /// A read on `address` ended after `elapsed`; a successful one is a latency sample.
    mutating func finished(_ address: SentinelAddress, after elapsed: Duration, ok: Bool, at now: ContinuousClock.Instant) {
        guard replicas[address] != nil else { return }
        replicas[address]!.inFlight = max(0, replicas[address]!.inFlight - 1)
        if ok { replicas[address]!.latency.record(elapsed, at: now) }
    }

    /// Makes `verified` the set; new replicas get pools from `makePool`; returns the pools of those that left.
    mutating func replace(with verified: [SentinelAddress], makePool: (SentinelAddress) -> Pool) -> (added: [Pool], removed: [Pool]) {
        let keep = Set(verified)
        let removed = order.filter { !keep.contains($0) }.compactMap { replicas.removeValue(forKey: $0)?.pool }
        var added: [Pool] = []
        for address in keep.sorted() where replicas[address] == nil {
            let pool = makePool(address)
            replicas[address] = Replica(pool: pool, latency: PeakEWMA(decay: .seconds(10)))
            added.append(pool)
        }
        order = keep.sorted()
        return (added, removed)
    }

    /// Takes `address` out; returns its pool.
    mutating func remove(_ address: SentinelAddress) -> Pool? {
        order.removeAll { $0 == address }
        return replicas.removeValue(forKey: address)?.pool
    }

    /// Takes every replica out; returns their pools.
    mutating func removeAll() -> [Pool] {
        defer {
            replicas.removeAll()
            order.removeAll()
        }
        return order.compactMap { replicas[$0]?.pool }
    }

    /// Unmeasured replicas cost nothing, so each is tried.
    private func cost(_ address: SentinelAddress) -> Double {
        guard let replica = replicas[address] else { return .infinity }
        return (replica.latency.estimate(at: .now) ?? 0) * Double(replica.inFlight + 1)
    }
}

/// How an open picks among a cluster's eligible nodes.
public enum BalancingStrategy: String, Sendable, Codable, Hashable, CaseIterable {
    /// Power of two choices over latency × (in-flight + 1): two random nodes,
    /// the cheaper one first; a slow first try is hedged by the next.
    case latency
    /// Every eligible node at once; the first to connect wins (the clustersql seed).
    case race
    /// Each open starts at the next node in turn; a slow first try is hedged by the next.
    case roundRobin = "round-robin"
}

/// What the balancer knows of one eligible node.
struct NodeCandidate: Sendable {
    /// The node's position in the list given to ``NodeSelection/order(_:strategy:turn:random:)``.
    let index: Int
    /// The latency estimate in seconds (`nil`: never measured).
    let latency: Double?
    /// Statements and connects in progress on the node.
    let inFlight: Int
    /// Whether the node should be tried first (a standby for prefer-standby).
    let preferred: Bool

    /// latency × (in-flight + 1); an unmeasured node costs nothing, so it is measured soon.
    var cost: Double { (latency ?? 0) * Double(inFlight + 1) }
}

/// The balancer's pure logic: the order in which an open tries nodes.
enum NodeSelection {
    /// The indices of `candidates` in the order to try them: preferred nodes
    /// first, each group ordered by `strategy`. `turn` counts opens for round-robin.
    static func order(
        _ candidates: [NodeCandidate], strategy: BalancingStrategy, turn: Int, random: inout some RandomNumberGenerator
    ) -> [Int] {
        let preferred = candidates.filter(\.preferred)
        let others = candidates.filter { !$0.preferred }
        return orderGroup(preferred, strategy: strategy, turn: turn, random: &random)
            + orderGroup(others, strategy: strategy, turn: turn, random: &random)
    }

    /// ``order(_:strategy:turn:random:)`` with the system's generator.
    ///
    /// The generator lives here, on the stack of a synchronous call: as a local of
    /// an async function, an `inout` of this empty struct is reported by
    /// ThreadSanitizer as a race between two opens (a zero-sized access at a shared address).
    static func order(_ candidates: [NodeCandidate], strategy: BalancingStrategy, turn: Int) -> [Int] {
        var random = SystemRandomNumberGenerator()
        return order(candidates, strategy: strategy, turn: turn, random: &random)
    }

    private static func orderGroup(
        _ group: [NodeCandidate], strategy: BalancingStrategy, turn: Int, random: inout some RandomNumberGenerator
    ) -> [Int] {
        guard group.count > 1 else { return group.map(\.index) }
        switch strategy {
        case .race:
            return group.map(\.index).shuffled(using: &random)
        case .roundRobin:
            let start = ((turn % group.count) + group.count) % group.count
            return (0..<group.count).map { group[(start + $0) % group.count].index }
        case .latency:
            // Power of two choices: the cheaper of two random nodes goes first,
            // then the rest from cheapest to dearest (the hedges).
            let first = Int.random(in: 0..<group.count, using: &random)
            var second = Int.random(in: 0..<(group.count - 1), using: &random)
            if second >= first { second += 1 }
            let chosen = group[first].cost <= group[second].cost ? first : second
            let rest = group.indices.filter { $0 != chosen }.sorted { group[$0].cost < group[$1].cost }
            return [group[chosen].index] + rest.map { group[$0].index }
        }
    }
}

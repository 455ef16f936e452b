import SQLCore
import Testing

@testable import ClusterSQL

/// A deterministic generator for the balancer's random picks.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Balancer: node order per strategy")
struct NodeSelectionTests {
    func candidates(_ latencies: [Double?], inFlight: [Int]? = nil, preferred: Set<Int> = []) -> [NodeCandidate] {
        latencies.enumerated().map {
            NodeCandidate(
                index: $0.offset, latency: $0.element, inFlight: inFlight?[$0.offset] ?? 0, preferred: preferred.contains($0.offset))
        }
    }

    @Test("latency: a node 25× slower is never first while two fast ones are up, and every node is still in the order")
    func latencyAvoidsTheSlowNode() {
        var random = SeededGenerator(state: 1)
        var firsts = [0, 0, 0]
        for turn in 0..<3000 {
            let order = NodeSelection.order(candidates([0.0002, 0.005, 0.0002]), strategy: .latency, turn: turn, random: &random)
            #expect(order.sorted() == [0, 1, 2])
            firsts[order[0]] += 1
        }
        #expect(firsts[1] == 0)
        #expect(firsts[0] > 1200 && firsts[2] > 1200, "the fast nodes share the load: \(firsts)")
    }

    @Test("latency: in-flight work raises a node's cost, so a busy fast node yields to an idle one")
    func inFlightRaisesCost() {
        var random = SeededGenerator(state: 7)
        for turn in 0..<200 {
            let order = NodeSelection.order(
                candidates([0.001, 0.002], inFlight: [5, 0]), strategy: .latency, turn: turn, random: &random)
            #expect(order == [1, 0])
        }
    }

    @Test("latency: an unmeasured node costs nothing, so it gets measured")
    func unmeasuredFirst() {
        var random = SeededGenerator(state: 3)
        let order = NodeSelection.order(candidates([0.001, nil]), strategy: .latency, turn: 0, random: &random)
        #expect(order == [1, 0])
    }

    @Test("round-robin: each turn starts at the next node")
    func roundRobin() {
        var random = SeededGenerator(state: 1)
        let orders = (0..<4).map {
            NodeSelection.order(candidates([0.001, 0.001, 0.001]), strategy: .roundRobin, turn: $0, random: &random)
        }
        #expect(orders == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]])
    }

    @Test("race: every node, in a random order")
    func race() {
        var random = SeededGenerator(state: 5)
        var seenFirst = Set<Int>()
        for turn in 0..<100 {
            let order = NodeSelection.order(candidates([0.001, 0.009, 0.002]), strategy: .race, turn: turn, random: &random)
            #expect(order.sorted() == [0, 1, 2])
            seenFirst.insert(order[0])
        }
        #expect(seenFirst == [0, 1, 2])
    }

    @Test("preferred nodes (standbys for prefer-standby) come first, whatever their cost")
    func preferredFirst() {
        var random = SeededGenerator(state: 9)
        for strategy in BalancingStrategy.allCases {
            let order = NodeSelection.order(
                candidates([0.001, 0.05, 0.001], preferred: [1]), strategy: strategy, turn: 1, random: &random)
            #expect(order.first == 1)
            #expect(order.sorted() == [0, 1, 2])
        }
    }

    @Test("target roles accept the node roles libpq's target_session_attrs does")
    func targets() {
        #expect(TargetRole.readWrite.accepts(.primary))
        #expect(!TargetRole.readWrite.accepts(.standby))
        #expect(!TargetRole.readWrite.accepts(.readOnlyPrimary))
        #expect(TargetRole.readOnly.accepts(.standby) && TargetRole.readOnly.accepts(.readOnlyPrimary))
        #expect(!TargetRole.readOnly.accepts(.primary))
        #expect(TargetRole.primary.accepts(.readOnlyPrimary) && !TargetRole.primary.accepts(.standby))
        #expect(TargetRole.standby.accepts(.standby) && !TargetRole.standby.accepts(.primary))
        for target in TargetRole.allCases { #expect(!target.accepts(.notReady)) }
        #expect(TargetRole.any.accepts(.unknown) && !TargetRole.readWrite.accepts(.unknown))
    }
}

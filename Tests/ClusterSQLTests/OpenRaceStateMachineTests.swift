import SQLCore
import Testing

@testable import ClusterSQL

/// The open's decisions without sockets or sleeps: every order of events an open can see.
@Suite("Open race state machine")
struct OpenRaceStateMachineTests {
    typealias Machine = OpenRaceStateMachine
    static let hedge = Duration.milliseconds(20)
    static let refused = SQLError(.connectionFailed, message: "refused")

    @Test("race: every node starts at once; the first success wins and cancels the rest; a late success is closed")
    func race() {
        var machine = Machine(staggers: [.none, .none, .none])
        #expect(machine.start() == [.launch(node: 0), .launch(node: 1), .launch(node: 2)])
        #expect(machine.attemptFailed(node: 2, error: Self.refused) == [])
        let (verdict, actions) = machine.attemptSucceeded(node: 1)
        #expect(verdict == .keep && actions == [.cancelAll])
        #expect(machine.phase == .won(node: 1))
        #expect(machine.attemptSucceeded(node: 0) == (.close, []))
        #expect(machine.running == 0)
    }

    @Test("hedged: the next node starts when the latest one's timer fires or it fails; the last node arms no timer")
    func hedged() {
        var machine = Machine(staggers: [.hedge(Self.hedge), .hedge(Self.hedge), .hedge(Self.hedge)])
        #expect(machine.start() == [.launch(node: 0), .armHedge(after: 0, Self.hedge)])
        #expect(machine.hedgeFired(after: 0) == [.launch(node: 1), .armHedge(after: 1, Self.hedge)])
        #expect(machine.attemptFailed(node: 1, error: Self.refused) == [.launch(node: 2)])
        #expect(machine.hedgeFired(after: 1) == [], "a timer of a node that is no longer the latest starts nothing")
        #expect(machine.hedgeFired(after: 2) == [], "every node is launched")
        #expect(machine.attemptSucceeded(node: 0).0 == .keep)
    }

    @Test("a late failure or a stale timer of an earlier node starts nothing; the latest node's failure does")
    func onlyTheLatestNodeStartsTheNext() {
        var machine = Machine(staggers: [.hedge(Self.hedge), .hedge(Self.hedge), .hedge(Self.hedge), .none])
        _ = machine.start()
        _ = machine.hedgeFired(after: 0)
        #expect(machine.attemptFailed(node: 0, error: Self.refused) == [])
        #expect(machine.hedgeFired(after: 0) == [])
        #expect(machine.launched == 2)
        #expect(machine.attemptFailed(node: 1, error: Self.refused) == [.launch(node: 2), .armHedge(after: 2, Self.hedge)])
    }

    @Test("a node without a stagger is raced with the next: mixed staggers launch in groups")
    func mixed() {
        var machine = Machine(staggers: [.hedge(Self.hedge), .none, .none, .hedge(.seconds(5))])
        #expect(machine.start() == [.launch(node: 0), .armHedge(after: 0, Self.hedge)])
        #expect(machine.hedgeFired(after: 0) == [.launch(node: 1), .launch(node: 2), .launch(node: 3)])
        #expect(machine.running == 4)
    }

    @Test("prefer-standby: the fallback starts only once every standby failed, in either order, never beside a slow one")
    func barrier() {
        for firstToFail in [0, 1] {
            var machine = Machine(staggers: [.none, .untilAllFailed, .none])
            #expect(machine.start() == [.launch(node: 0), .launch(node: 1)])
            #expect(machine.attemptFailed(node: firstToFail, error: Self.refused) == [], "the other standby may only be slow")
            #expect(machine.attemptFailed(node: 1 - firstToFail, error: Self.refused) == [.launch(node: 2)])
        }
        var hedged = Machine(staggers: [.hedge(Self.hedge), .untilAllFailed, .none])
        _ = hedged.start()
        #expect(hedged.hedgeFired(after: 0) == [.launch(node: 1)], "no timer after the barrier")
        #expect(hedged.attemptFailed(node: 1, error: Self.refused) == [])
        #expect(hedged.timeoutFired() == [.cancelAll])
        #expect(hedged.launched == 2, "the primary was never a hedge against the slow standby")
    }

    @Test("every node failing ends the open, cancelling its timer, with each node's error")
    func exhausted() {
        var machine = Machine(staggers: [.hedge(Self.hedge), .hedge(Self.hedge)])
        _ = machine.start()
        #expect(machine.attemptFailed(node: 0, error: Self.refused) == [.launch(node: 1)])
        #expect(machine.attemptFailed(node: 1, error: SQLError(.authenticationFailed, message: "no")) == [.cancelAll])
        #expect(machine.phase == .exhausted)
        #expect(machine.failures[0]?.code == .connectionFailed && machine.failures[1]?.code == .authenticationFailed)
    }

    @Test("the open timeout ends the open; what comes after is closed or recorded, nothing is launched")
    func expired() {
        var machine = Machine(staggers: [.hedge(Self.hedge), .hedge(Self.hedge), .hedge(Self.hedge)])
        _ = machine.start()
        #expect(machine.timeoutFired() == [.cancelAll])
        #expect(machine.phase == .expired)
        #expect(machine.hedgeFired(after: 0) == [])
        #expect(machine.attemptSucceeded(node: 0) == (.close, []))
        #expect(machine.timeoutFired() == [])
        #expect(machine.launched == 1)
    }

    @Test("no node: over before it starts")
    func noNodes() {
        var machine = Machine(staggers: [])
        #expect(machine.start() == [])
        #expect(machine.phase == .exhausted)
    }

    @Test("random orders of events: each node launched once and in order, one winner at most, nothing launched once decided")
    func randomOrders() {
        var random = SeededGenerator(state: 7)
        for _ in 0..<2_000 {
            let count = Int.random(in: 1...5, using: &random)
            let staggers: [Machine.Stagger] = (0..<count).map { _ in
                [.none, .hedge(Self.hedge), .untilAllFailed].randomElement(using: &random)!
            }
            var machine = Machine(staggers: staggers)
            var launched: [Int] = []
            var running: Set<Int> = []
            var hedges: [Int] = []
            var winners = 0
            func apply(_ actions: [Machine.Action]) {
                for action in actions {
                    switch action {
                    case .launch(let node):
                        #expect(machine.phase == .racing, "only an undecided open launches")
                        launched.append(node)
                        running.insert(node)
                    case .armHedge(let node, _): hedges.append(node)
                    case .cancelAll: #expect(machine.phase != .racing)
                    }
                }
            }
            apply(machine.start())
            var timedOut = false
            while !running.isEmpty || (!hedges.isEmpty && machine.phase == .racing) {
                let phaseBefore = machine.phase
                switch Int.random(in: 0..<10, using: &random) {
                case 0 where !timedOut:
                    timedOut = true
                    apply(machine.timeoutFired())
                case 1...3 where !hedges.isEmpty:
                    apply(machine.hedgeFired(after: hedges.removeFirst()))
                default:
                    guard let node = running.randomElement(using: &random) else { continue }
                    running.remove(node)
                    if Bool.random(using: &random) {
                        let (verdict, actions) = machine.attemptSucceeded(node: node)
                        if verdict == .keep { winners += 1 }
                        apply(actions)
                    } else {
                        apply(machine.attemptFailed(node: node, error: Self.refused))
                    }
                }
                if phaseBefore != .racing { #expect(machine.phase == phaseBefore, "a decided open stays decided") }
            }
            #expect(launched == Array(0..<launched.count), "in order, each once: \(launched)")
            #expect(winners <= 1)
            #expect(machine.running == 0)
            #expect(machine.phase != .racing, "every open ends: \(staggers)")
            if case .won = machine.phase { #expect(winners == 1) }
        }
    }
}

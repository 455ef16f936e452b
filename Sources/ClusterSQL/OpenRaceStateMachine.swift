import SQLCore

/// The decisions of an open over several nodes (``OpenRace``), apart from the
/// tasks, timers and connections that carry them out: which node to try next
/// and when, which success wins, and when the open is over.
///
/// Each event returns what the shell must do. Nodes are tried in order; what
/// starts node `i + 1` after node `i` is `staggers[i]` (``Stagger``). Only the
/// latest node's failure or timer starts another: once node `i + 1` runs, what
/// happens to node `i` no longer adds load (earlier, a stale timer or a late
/// failure of an earlier node started one more node ahead of its time). A
/// barrier (``Stagger/untilAllFailed``) waits for every try before it to fail.
struct OpenRaceStateMachine {
    /// Where the open stands.
    ///
    /// - `racing` → `won` (a try succeeded), `expired` (the open timeout fired)
    ///   or `exhausted` (every node was tried and every try failed).
    /// - `won`, `expired`, `exhausted` are final: a late success is closed, a
    ///   late failure only recorded.
    enum Phase: Equatable {
        case racing
        case won(node: Int)
        case expired
        case exhausted
    }

    /// When the node after this one starts.
    enum Stagger: Equatable, Sendable {
        /// At once: the two race.
        case none
        /// When this node's try fails or has not succeeded after this long (a hedge).
        case hedge(Duration)
        /// Only when every try started so far has failed: the nodes after it
        /// are a fallback, never a hedge against a node that is only slow
        /// (prefer-standby's standbys before the primary).
        case untilAllFailed
    }

    /// What the shell does after an event, in order.
    enum Action: Equatable {
        /// Start a try on this node.
        case launch(node: Int)
        /// Start a timer that reports ``OpenRaceStateMachine/hedgeFired(after:)`` with
        /// this node after this long.
        case armHedge(after: Int, Duration)
        /// Cancel every try and timer still running: the open is decided.
        case cancelAll
    }

    /// What to do with a connection that a try opened.
    enum SuccessVerdict: Equatable {
        /// It wins the open.
        case keep
        /// The open was already decided: close it.
        case close
    }

    private let staggers: [Stagger]
    private(set) var phase = Phase.racing
    /// How many nodes have been launched (they are launched in order).
    private(set) var launched = 0
    /// Tries started and not finished.
    private(set) var running = 0
    /// The failure of each node whose try failed.
    private(set) var failures: [Int: SQLError] = [:]

    /// An open over `staggers.count` nodes; `staggers[i]` says when the node after node `i` starts.
    init(staggers: [Stagger]) {
        self.staggers = staggers
    }

    /// The actions that begin the open: the first node (and those raced with it).
    mutating func start() -> [Action] {
        guard !staggers.isEmpty else {
            phase = .exhausted
            return []
        }
        return launchNext()
    }

    /// A try opened a connection on `node`.
    mutating func attemptSucceeded(node: Int) -> (SuccessVerdict, [Action]) {
        running -= 1
        guard phase == .racing else { return (.close, []) }
        phase = .won(node: node)
        return (.keep, [.cancelAll])
    }

    /// A try on `node` failed with `error`.
    mutating func attemptFailed(node: Int, error: SQLError) -> [Action] {
        running -= 1
        failures[node] = error
        guard phase == .racing else { return [] }
        let latest = launched - 1
        let next =
            switch staggers[latest] {
            case .untilAllFailed: running == 0
            case .none, .hedge: node == latest
            }
        return (next ? launchNext() : []) + finishIfExhausted()
    }

    /// The hedge timer armed when `node` was launched fired.
    mutating func hedgeFired(after node: Int) -> [Action] {
        guard phase == .racing, node == launched - 1 else { return [] }
        return launchNext()
    }

    /// The open timeout fired.
    mutating func timeoutFired() -> [Action] {
        guard phase == .racing else { return [] }
        phase = .expired
        return [.cancelAll]
    }

    private mutating func launchNext() -> [Action] {
        var actions: [Action] = []
        while launched < staggers.count {
            let node = launched
            launched += 1
            running += 1
            actions.append(.launch(node: node))
            guard launched < staggers.count else { break }
            if case .none = staggers[node] { continue }  // raced with the next one
            if case .hedge(let delay) = staggers[node] { actions.append(.armHedge(after: node, delay)) }
            break
        }
        return actions
    }

    private mutating func finishIfExhausted() -> [Action] {
        guard phase == .racing, running == 0, launched == staggers.count else { return [] }
        phase = .exhausted
        return [.cancelAll]  // the open timeout's timer
    }
}

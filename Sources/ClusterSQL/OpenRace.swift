import ConnectionKit
import SQLCore

/// Opens one connection on the first of `nodes` to succeed.
///
/// Without a stagger every node is tried at once (the clustersql seed). With
/// one, the nodes are tried in order: the next starts when the previous try
/// fails or has not succeeded after its stagger (a hedge). The first success
/// wins; every other try is cancelled, and one that succeeds anyway is closed.
/// All tries run as child tasks, each on its own connection, so they are truly
/// concurrent: a node that hangs delays nobody.
struct OpenRace: Sendable {
    let nodes: [ClusterNode]
    let target: TargetRole
    /// Whether every try checks the node's role, even where the cached one would do.
    let verifyRole: Bool
    /// When the node after this one is tried as well (``OpenRaceStateMachine/Stagger``).
    let stagger: @Sendable (ClusterNode) -> OpenRaceStateMachine.Stagger
    let timeout: Duration
    /// The clock of the hedges and the open timeout.
    let clock: AnyClock

    private enum Event: Sendable {
        case attempt(Int, Result<any SQLConnection, SQLError>)
        case hedge(after: Int)
        case expired
        case timerCancelled
    }

    /// Runs ``OpenRaceStateMachine``'s decisions: its tries and timers as child tasks.
    func run() async throws(SQLError) -> NodeBinding {
        var launched = 0
        return try await run(launched: &launched)
    }

    /// ``run()``, telling how many of `nodes` (in order) were tried.
    func run(launched: inout Int) async throws(SQLError) -> NodeBinding {
        var machine = OpenRaceStateMachine(staggers: nodes.map(stagger))
        let (outcome, tried) = await withTaskGroup(of: Event.self) { group -> (Result<NodeBinding, SQLError>, Int) in
            var winner: NodeBinding?
            func perform(_ actions: [OpenRaceStateMachine.Action]) {
                for action in actions {
                    switch action {
                    case .launch(let index):
                        let node = nodes[index]
                        group.addTask { [target, verifyRole] in
                            .attempt(index, await node.attempt(for: target, verifyingRole: verifyRole))
                        }
                    case .armHedge(let index, let delay):
                        group.addTask { [clock] in
                            do { try await clock.sleep(for: delay) } catch { return .timerCancelled }
                            return .hedge(after: index)
                        }
                    case .cancelAll:
                        group.cancelAll()
                    }
                }
            }

            group.addTask { [timeout, clock] in
                do { try await clock.sleep(for: timeout) } catch { return .timerCancelled }
                return .expired
            }
            perform(machine.start())
            if machine.phase == .exhausted { group.cancelAll() }  // no node at all
            while let event = await group.next() {
                switch event {
                case .attempt(let index, .success(let connection)):
                    let (verdict, actions) = machine.attemptSucceeded(node: index)
                    switch verdict {
                    case .keep: winner = NodeBinding(node: nodes[index], connection: connection)
                    case .close: await connection.close()  // a late success
                    }
                    perform(actions)
                case .attempt(let index, .failure(let error)):
                    perform(machine.attemptFailed(node: index, error: error))
                case .hedge(let index):
                    perform(machine.hedgeFired(after: index))
                case .expired:
                    perform(machine.timeoutFired())
                case .timerCancelled:
                    break
                }
            }
            if let winner { return (.success(winner), machine.launched) }
            return (.failure(failure(machine.failures, expired: machine.phase == .expired, launched: machine.launched)), machine.launched)
        }
        launched = tried
        return try outcome.get()
    }

    private func failure(_ failures: [Int: SQLError], expired: Bool, launched: Int) -> SQLError {
        let list = nodes.indices.map { index in
            NodeFailure(
                node: nodes[index].name,
                error: failures[index]
                    ?? SQLError(
                        index < launched ? .timeout : .cancelled,
                        message: index < launched ? "no answer within the open timeout of \(timeout)" : "not tried", node: nodes[index].name
                    ))
        }
        let everyNode = NodeFailures(failures: list)
        if expired {
            return SQLError(.timeout, message: "no node answered within \(timeout): \(everyNode)", underlying: everyNode)
        }
        if Task.isCancelled, list.allSatisfy({ $0.error.code == .cancelled }) {
            return SQLError(.cancelled, message: "the open was cancelled", underlying: everyNode)
        }
        let code: SQLError.Code = list.allSatisfy({ $0.error.code == .roleMismatch }) ? .noEligibleNode : .allNodesFailed
        return SQLError(code, message: "all \(list.count) node(s) failed: \(everyNode)", underlying: everyNode)
    }
}

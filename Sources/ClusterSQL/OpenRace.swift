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
    /// The wait before the next node is tried as well; `nil`: all at once; the
    /// open timeout: only once this node's try failed.
    let stagger: @Sendable (ClusterNode) -> Duration?
    let timeout: Duration

    private enum Event: Sendable {
        case attempt(Int, Result<any SQLConnection, SQLError>)
        case hedge
        case expired
        case timerCancelled
    }

    func run() async throws(SQLError) -> NodeBinding {
        let outcome = await withTaskGroup(of: Event.self) { group -> Result<NodeBinding, SQLError> in
            var launched = 0
            var pending = 0
            var failures: [Int: SQLError] = [:]
            var winner: NodeBinding?
            var expired = false

            func launchNext(_ group: inout TaskGroup<Event>) {
                guard launched < nodes.count else { return }
                let index = launched
                let node = nodes[index]
                launched += 1
                pending += 1
                group.addTask { [target, verifyRole] in .attempt(index, await node.attempt(for: target, verifyingRole: verifyRole)) }
                if launched < nodes.count, let delay = stagger(node) {
                    group.addTask {
                        do { try await Task.sleep(for: delay) } catch { return .timerCancelled }
                        return .hedge
                    }
                } else if launched < nodes.count {
                    launchNext(&group)
                }
            }

            group.addTask { [timeout] in
                do { try await Task.sleep(for: timeout) } catch { return .timerCancelled }
                return .expired
            }
            launchNext(&group)
            while let event = await group.next() {
                switch event {
                case .attempt(let index, .success(let connection)):
                    pending -= 1
                    if winner == nil, !expired {
                        winner = NodeBinding(node: nodes[index], connection: connection)
                        group.cancelAll()
                    } else {
                        await connection.close()  // a late success
                    }
                case .attempt(let index, .failure(let error)):
                    pending -= 1
                    failures[index] = error
                    if winner == nil, !expired { launchNext(&group) }
                case .hedge:
                    if winner == nil, !expired { launchNext(&group) }
                case .expired:
                    expired = true
                    group.cancelAll()
                case .timerCancelled:
                    break
                }
                if winner == nil, pending == 0, launched == nodes.count || expired { group.cancelAll() }
            }
            if let winner { return .success(winner) }
            return .failure(failure(failures, expired: expired, launched: launched))
        }
        return try outcome.get()
    }

    private func failure(_ failures: [Int: SQLError], expired: Bool, launched: Int) -> SQLError {
        let list = nodes.indices.map { index in
            NodeFailure(
                node: nodes[index].name,
                error: failures[index] ?? SQLError(
                    index < launched ? .timeout : .cancelled,
                    message: index < launched ? "no answer within the open timeout of \(timeout)" : "not tried", node: nodes[index].name))
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

import SQLCore

extension SQLError.Code {
    /// The cluster has no nodes.
    public static let noNodes = SQLError.Code("noNodes", defaultKind: .connection)
    /// No node can serve the open now: every node is ejected or has another role.
    public static let noEligibleNode = SQLError.Code("noEligibleNode", defaultKind: .connection)
    /// Every node tried failed; `SQLError.underlying` is a ``NodeFailures``.
    public static let allNodesFailed = SQLError.Code("allNodesFailed", defaultKind: .connection)
    /// The node turned out to have another role than the open asked for (not a failure of the node).
    public static let roleMismatch = SQLError.Code("roleMismatch", defaultKind: .connection)
    /// The node's role changed, or it was ejected or removed, during a
    /// transaction: the transaction is lost and nothing more was sent to it.
    public static let nodeChanged = SQLError.Code("nodeChanged", defaultKind: .connection)
}

/// One node's error in a failed open.
public struct NodeFailure: Sendable, CustomStringConvertible {
    /// The node's name.
    public let node: String
    /// What went wrong there.
    public let error: SQLError

    /// `node: error`.
    public var description: String { "\(node): \(error.description)" }
}

/// Each node's error when an open found no node (`SQLError.Code.allNodesFailed`,
/// `SQLError.Code.noEligibleNode`), in the order the nodes were tried.
public struct NodeFailures: Error, Sendable, CustomStringConvertible {
    /// The failures, one per node.
    public let failures: [NodeFailure]

    /// One line per node, `; `-separated.
    public var description: String { failures.map(\.description).joined(separator: "; ") }

    /// The error of `node`, if it failed.
    public func error(of node: String) -> SQLError? { failures.first { $0.node == node }?.error }
}

import SQLCore

/// What ``ClusterConnectionStateMachine`` needs to know of a connection to a node.
protocol ClusterBinding: Sendable {
    /// The node the connection is open to.
    var nodeName: String { get }
    /// Whether `other` is this very connection.
    func isSame(as other: Self) -> Bool
}

/// The decisions of a ``ClusterConnection``, apart from the nodes and connections that carry
/// them out: the connection a statement runs on, when it moves to another node, whether a failed
/// statement runs again elsewhere, and what a transaction holds.
///
/// - `bound(binding, transaction)`: on one node's connection. While a transaction holds it
///   (begun with `begin()`, or reported open by the backend after a statement: a `BEGIN` sent as
///   SQL) it never moves: the transaction finishes there for as long as the connection works,
///   even when its node is ejected, lags or is removed meanwhile.
/// - `unbound(lostTransaction:)`: the connection was dropped after a connection-class failure;
///   the next statement opens a new one, unless a transaction begun with `begin()` was on it: that
///   transaction is lost, and statements fail with `nodeChanged` until `commit()` or `rollback()`
///   ends it.
/// - `closed`: final.
struct ClusterConnectionStateMachine<Binding: ClusterBinding>: Sendable {
    /// What holds the connection to its node.
    struct Transaction: Equatable, Sendable {
        /// Between `begin()` and its commit or rollback.
        var begun = false
        /// The backend reported a transaction open after the last statement.
        var reportedOpen = false

        /// Whether a transaction holds the connection, however it was begun.
        var holds: Bool { begun || reportedOpen }
    }

    /// Where the connection stands.
    enum State: Sendable {
        case bound(Binding, Transaction)
        case unbound(lostTransaction: Bool)
        case closed
    }

    /// What the shell does with the next statement.
    enum StatementPlan {
        /// Run it on this connection; `inTransaction`: a transaction holds it (nothing is retried).
        case run(Binding, inTransaction: Bool)
        /// Open a connection on a node that serves the open first (closing `dropping`, if any, which
        /// no longer serves it), then plan again.
        case rebind(dropping: Binding?)
        /// Fail the statement: nothing is sent.
        case fail(SQLError)
    }

    /// What the shell does after a statement failed.
    enum FailurePlan: Equatable {
        /// A statement-class error: the connection stays; the error goes to the caller.
        case surface
        /// A connection-class error: the connection is dropped; the error goes to the caller.
        case dropAndSurface
        /// A connection-class error, and running the statement again is safe: the connection is
        /// dropped and the statement runs on another node.
        case dropAndRetryElsewhere
    }

    private(set) var state: State

    /// A connection opened on `binding`.
    init(binding: Binding) { state = .bound(binding, Transaction()) }

    /// The connection a statement may run on now, if any.
    var binding: Binding? {
        if case .bound(let binding, _) = state { return binding }
        return nil
    }

    /// Whether a transaction holds the connection (or was lost with its connection).
    var holdsTransaction: Bool {
        switch state {
        case .bound(_, let transaction): transaction.holds
        case .unbound(let lost): lost
        case .closed: false
        }
    }

    /// Where the next statement runs. `isValid` tells whether a connection still works, `serves`
    /// whether its node still serves the open (not ejected, removed, of another role or lagging);
    /// `serves` is asked only outside a transaction.
    func planStatement(isValid: (Binding) -> Bool, serves: (Binding) -> Bool) -> StatementPlan {
        switch state {
        case .closed:
            return .fail(SQLError(.closed, message: "the cluster connection is closed"))
        case .unbound(lostTransaction: true):
            return .fail(Self.transactionLost(node: "none"))
        case .unbound(lostTransaction: false):
            return .rebind(dropping: nil)
        case .bound(let binding, let transaction):
            let valid = isValid(binding)
            if valid, transaction.holds || serves(binding) { return .run(binding, inTransaction: transaction.holds) }
            if transaction.holds { return .fail(Self.transactionLost(node: binding.nodeName)) }
            return .rebind(dropping: binding)
        }
    }

    /// What follows a statement's failure with `error` on its `attempt`-th node (of at most
    /// `maxAttempts`); `inTransaction` and `idempotent` as they were when it was planned.
    static func planAfterFailure(
        _ error: SQLError, attempt: Int, maxAttempts: Int, inTransaction: Bool, idempotent: Bool
    ) -> FailurePlan {
        guard error.isConnectionError else { return .surface }
        let retry = StatementRetry.mayRetry(
            after: error, attempt: attempt, maxAttempts: maxAttempts, inTransaction: inTransaction, idempotent: idempotent)
        return retry ? .dropAndRetryElsewhere : .dropAndSurface
    }

    /// A new connection for the open: false when the connection was closed meanwhile (the shell
    /// closes `fresh`).
    mutating func rebound(to fresh: Binding) -> Bool {
        if case .closed = state { return false }
        state = .bound(fresh, Transaction())
        return true
    }

    /// Read-your-writes moved the statement from `old` to `new` (a primary that has the session's
    /// writes): false when `old` is no longer the connection (the shell closes `new`).
    mutating func moved(from old: Binding, to new: Binding) -> Bool {
        guard case .bound(let current, let transaction) = state, current.isSame(as: old) else { return false }
        state = .bound(new, transaction)
        return true
    }

    /// `binding` failed at the connection level: true when it was the connection (the shell closes
    /// it). A transaction begun on it is lost with it.
    mutating func dropped(_ binding: Binding) -> Bool {
        guard case .bound(let current, let transaction) = state, current.isSame(as: binding) else { return false }
        state = .unbound(lostTransaction: transaction.begun)
        return true
    }

    /// The backend's transaction status after a statement on `binding` (kept while `binding` is
    /// the connection; `unknown` keeps the last known answer).
    mutating func statementEnded(on binding: Binding, status: SQLTransactionStatus) {
        guard status != .unknown, case .bound(let current, var transaction) = state, current.isSame(as: binding) else { return }
        transaction.reportedOpen = status != .idle
        state = .bound(current, transaction)
    }

    /// `begin()` succeeded.
    mutating func began() {
        switch state {
        case .bound(let binding, var transaction):
            transaction.begun = true
            state = .bound(binding, transaction)
        case .unbound: state = .unbound(lostTransaction: true)
        case .closed: break
        }
    }

    /// `commit()` or `rollback()` ended the transaction begun with `begin()` (whether or not it
    /// succeeded: a failed commit leaves no transaction to finish).
    mutating func ended() {
        switch state {
        case .bound(let binding, var transaction):
            transaction.begun = false
            state = .bound(binding, transaction)
        case .unbound: state = .unbound(lostTransaction: false)
        case .closed: break
        }
    }

    /// Closes the connection: the binding the shell closes, if any.
    mutating func close() -> Binding? {
        defer { state = .closed }
        return binding
    }

    private static func transactionLost(node: String) -> SQLError {
        SQLError(.nodeChanged, message: "the connection to the node failed during the transaction; it is lost", node: node)
    }
}

extension NodeBinding: ClusterBinding {
    var nodeName: String { node.name }
    func isSame(as other: NodeBinding) -> Bool { connection === other.connection }
}

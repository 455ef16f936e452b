import ConnectionKit
import Logging
import SQLCore
import Tracing

/// A connection handed out by ``ClusterDriver``: one node's connection at a
/// time, moved to another node between statements when its node is ejected,
/// removed, no longer has the role the open asked for, or lags beyond its limits.
///
/// A statement whose node fails before it was sent is retried on another node;
/// after it was sent, the error surfaces, unless the statement is idempotent
/// (``ClusterDriver/idempotent(_:)``, or a plain read when
/// ``ClusterDriverConfiguration/retryReads`` is on). Inside a transaction
/// (begun with ``begin()`` or with SQL of its own, as the backend reports it)
/// nothing is retried or moved: the transaction stays on its connection for as
/// long as that connection works, even when its node is ejected meanwhile.
final class ClusterConnection: SQLConnection {
    typealias StateMachine = ClusterConnectionStateMachine<NodeBinding>

    /// What a statement does to the data, for read-your-writes.
    enum Effect {
        /// Reads, or writes inside a transaction (seen by others only at its commit).
        case read
        /// Writes, committed at once outside a transaction.
        case write
        /// Commits a transaction.
        case commit
    }

    let cluster: ClusterDriver
    let request: OpenRequest
    let machine: Locked<StateMachine>
    let rebinding = AsyncLock()

    /// What runs on each node connection this one binds to (`connect(to:onConnect:)`).
    let sessionSetup: SQLSessionSetup?

    init(cluster: ClusterDriver, request: OpenRequest, binding: NodeBinding, sessionSetup: SQLSessionSetup? = nil) {
        self.cluster = cluster
        self.request = request
        self.sessionSetup = sessionSetup
        self.machine = Locked(StateMachine(binding: binding))
    }

    /// The node the connection is on now.
    var nodeName: String? { machine.withLock { $0.binding?.node.name } }

    var isValid: Bool {
        guard case .bound(let binding, let transaction) = machine.withLock({ $0.state }) else { return false }
        return binding.connection.isValid && (transaction.holds || binding.node.serves(request))
    }

    var transactionStatus: SQLTransactionStatus {
        switch machine.withLock({ $0.state }) {
        case .closed: .unknown
        // The last node's connection was dropped: the next statement opens a new one, unless a transaction was lost with it.
        case .unbound(let lostTransaction): lostTransaction ? .unknown : .idle
        case .bound(let binding, _): binding.connection.transactionStatus
        }
    }

    func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await perform(idempotent: self.isRetryableRead(sql), effect: StatementKind.isPlainRead(sql) ? .read : .write) {
            connection throws(SQLError) in try await connection.query(sql, parameters)
        }
    }

    func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        try await perform(idempotent: self.isRetryableRead(sql), effect: StatementKind.isPlainRead(sql) ? .read : .write) {
            connection throws(SQLError) in try await connection.queryAll(sql, parameters)
        }
    }

    /// Whether `sql` may be retried after it was sent: a plain read, when the cluster retries reads.
    func isRetryableRead(_ sql: String) -> Bool {
        cluster.configuration.retryReads && StatementKind.isPlainRead(sql)
    }

    func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await perform(idempotent: false, effect: .write) { connection throws(SQLError) in
            try await connection.execute(sql, parameters)
        }
    }

    func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution] {
        try await perform(idempotent: false, effect: .write) { connection throws(SQLError) in
            try await connection.execute(sql, batch: batch)
        }
    }

    func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement {
        ClusterPreparedStatement(connection: self, sql: sql)
    }

    func begin(_ options: SQLTransactionOptions) async throws(SQLError) {
        // Nothing is open before BEGIN: it can always move to another node.
        try await perform(idempotent: true) { connection throws(SQLError) in try await connection.begin(options) }
        machine.withLock { $0.began() }
    }

    func commit() async throws(SQLError) {
        defer { machine.withLock { $0.ended() } }
        try await perform(idempotent: false, effect: .commit) { connection throws(SQLError) in try await connection.commit() }
    }

    func rollback() async throws(SQLError) {
        defer { machine.withLock { $0.ended() } }
        try await perform(idempotent: false) { connection throws(SQLError) in try await connection.rollback() }
    }

    func ping() async throws(SQLError) {
        try await perform(idempotent: true) { connection throws(SQLError) in try await connection.ping() }
    }

    func close() async {
        let binding = machine.withLock { $0.close() }
        await binding?.connection.close()
    }

    /// Runs `body` on the current node's connection, moving and retrying as the type's documentation says;
    /// in a ``ReadYourWritesSession``, on a node that has applied the session's writes, and taking a
    /// write's position into the session.
    func perform<T>(
        idempotent: @autoclosure () -> Bool, effect: @autoclosure () -> Effect = .read,
        _ body: (any SQLConnection) async throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        var excluded: Set<String> = []
        var attempt = 1
        let session = ClusterDriver.readYourWritesSession
        // With tracing on, a `clustersql.retry` span covers each try after the first (it fails with the last try).
        var retrySpan: (any Span)?
        defer { retrySpan?.end() }
        while true {
            var (binding, inTransaction) = try await usableBinding(excluding: excluded)
            do throws(SQLError) {
                // Outside a session this costs nothing: no lock, no scan of the statement's text.
                if let session, let position = session.position(for: cluster.configuration.name), !inTransaction {
                    binding = try await applied(position, on: binding, session: session)
                }
                let result: T
                do throws(SQLError) {
                    result = try await binding.node.measure { () async throws(SQLError) -> T in try await body(binding.connection) }
                } catch {
                    if !error.isConnectionError { statementEnded(on: binding) }
                    throw error
                }
                statementEnded(on: binding)
                if let session, case let effect = effect(),
                    effect == .commit || (effect == .write && !machine.withLock({ $0.holdsTransaction }))
                {
                    await recordWrite(on: binding, into: session)
                }
                return result
            } catch {
                if error.code == .readOnly { binding.node.checkSoon() }
                let plan = StateMachine.planAfterFailure(
                    error, attempt: attempt, maxAttempts: cluster.configuration.maxAttempts, inTransaction: inTransaction,
                    idempotent: error.isConnectionError && (idempotent() || ClusterDriver.statementsAreIdempotent))
                if plan != .surface { await drop(binding) }
                guard plan == .dropAndRetryElsewhere else {
                    if let retrySpan { ClientSpans.recordFailure(on: retrySpan, type: error.code.description) }
                    throw error.on(node: binding.node.name)
                }
                cluster.logger.debug(
                    "retrying a statement on another node",
                    metadata: ["node": "\(binding.node.name)", "error": "\(error.code)"])
                excluded.insert(binding.node.name)
                attempt += 1
                if let tracer = cluster.tracer {
                    retrySpan?.end()
                    let span = tracer.startSpan("clustersql.retry", ofKind: .internal)
                    span.updateAttributes { attributes in
                        attributes["clustersql.cluster"] = cluster.configuration.name
                        attributes["clustersql.attempt"] = attempt
                        attributes["clustersql.failed_node"] = binding.node.name
                        attributes["error.type"] = error.code.description
                    }
                    retrySpan = span
                }
            }
        }
    }

    /// Keeps whether the backend reports a transaction open after a statement on `binding`.
    private func statementEnded(on binding: NodeBinding) {
        let status = binding.connection.transactionStatus
        machine.withLock { $0.statementEnded(on: binding, status: status) }
    }

    /// The connection the next statement runs on, and whether a transaction holds it: the
    /// current one, or (outside a transaction, when its node no longer serves the open) a new one
    /// on another node.
    private func usableBinding(excluding excluded: Set<String>) async throws(SQLError) -> (NodeBinding, inTransaction: Bool) {
        switch plan() {
        case .run(let binding, let inTransaction): return (binding, inTransaction)
        case .fail(let error): throw error
        case .rebind: break
        }
        guard await rebinding.lock() else { throw SQLError(.cancelled, message: "cancelled while moving to another node") }
        defer { rebinding.unlock() }
        // Another caller may have moved the connection meanwhile: plan again under the lock.
        switch plan() {
        case .run(let binding, let inTransaction): return (binding, inTransaction)
        case .fail(let error): throw error
        case .rebind(let stale): if let stale { await drop(stale) }
        }
        let fresh = try await cluster.open(request, excluding: excluded, sessionSetup: sessionSetup)
        guard machine.withLock({ $0.rebound(to: fresh) }) else {
            await fresh.connection.close()
            throw SQLError(.closed, message: "the cluster connection is closed")
        }
        return (fresh, false)
    }

    /// The state machine's plan for the next statement, from the connection's and its node's state now.
    private func plan() -> StateMachine.StatementPlan {
        let machine = machine.withLock { $0 }
        return machine.planStatement(
            isValid: { $0.connection.isValid }, serves: { [request] in $0.node.serves(request) })
    }

    private func drop(_ binding: NodeBinding) async {
        if machine.withLock({ $0.dropped(binding) }) { await binding.connection.close() }
    }
}

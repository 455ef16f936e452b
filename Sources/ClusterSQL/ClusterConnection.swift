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
    struct State: Sendable {
        var binding: NodeBinding?
        /// Between ``begin()`` and its commit or rollback.
        var inTransaction = false
        /// The backend reported a transaction open after the last statement (a `BEGIN` sent as SQL).
        var serverTransaction = false
        var closed = false

        /// Whether a transaction holds the connection, however it was begun.
        var holdsTransaction: Bool { inTransaction || serverTransaction }
    }

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
    let state: Locked<State>
    let rebinding = AsyncLock()

    init(cluster: ClusterDriver, request: OpenRequest, binding: NodeBinding) {
        self.cluster = cluster
        self.request = request
        self.state = Locked(State(binding: binding))
    }

    /// The node the connection is on now.
    var nodeName: String? { state.withLock { $0.binding?.node.name } }

    var isValid: Bool {
        let (binding, inTransaction) = state.withLock { ($0.closed ? nil : $0.binding, $0.holdsTransaction) }
        guard let binding else { return false }
        return binding.connection.isValid && (inTransaction || binding.node.serves(request))
    }

    var transactionStatus: SQLTransactionStatus {
        let (binding, closed, inTransaction) = state.withLock { ($0.binding, $0.closed, $0.holdsTransaction) }
        if closed { return .unknown }
        // No binding: the last node's connection was dropped, and the next statement opens a new one.
        guard let binding else { return inTransaction ? .unknown : .idle }
        return binding.connection.transactionStatus
    }

    func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await perform(idempotent: self.isRetryableRead(sql), effect: StatementKind.isPlainRead(sql) ? .read : .write) {
            connection throws(SQLError) in try await connection.query(sql, parameters)
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

    func begin() async throws(SQLError) {
        // Nothing is open before BEGIN: it can always move to another node.
        try await perform(idempotent: true) { connection throws(SQLError) in try await connection.begin() }
        state.withLock { $0.inTransaction = true }
    }

    func commit() async throws(SQLError) {
        defer { state.withLock { $0.inTransaction = false } }
        try await perform(idempotent: false, effect: .commit) { connection throws(SQLError) in try await connection.commit() }
    }

    func rollback() async throws(SQLError) {
        defer { state.withLock { $0.inTransaction = false } }
        try await perform(idempotent: false) { connection throws(SQLError) in try await connection.rollback() }
    }

    func ping() async throws(SQLError) {
        try await perform(idempotent: true) { connection throws(SQLError) in try await connection.ping() }
    }

    func close() async {
        let binding = state.withLock { state -> NodeBinding? in
            state.closed = true
            defer { state.binding = nil }
            return state.binding
        }
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
            var binding = try await usableBinding(excluding: excluded)
            let inTransaction = state.withLock { $0.holdsTransaction }
            do throws(SQLError) {
                // Outside a session this costs nothing: no lock, no scan of the statement's text.
                if let session, let position = session.position(for: cluster.configuration.name), !inTransaction {
                    binding = try await applied(position, on: binding, session: session)
                }
                let result: T
                do throws(SQLError) {
                    result = try await binding.node.measure { () async throws(SQLError) -> T in try await body(binding.connection) }
                } catch {
                    if !error.isConnectionError { noteTransactionStatus(of: binding) }
                    throw error
                }
                noteTransactionStatus(of: binding)
                if let session, case let effect = effect(),
                    effect == .commit || (effect == .write && !state.withLock({ $0.holdsTransaction }))
                {
                    await recordWrite(on: binding, into: session)
                }
                return result
            } catch {
                if error.code == .readOnly { binding.node.checkSoon() }
                guard error.isConnectionError else {
                    if let retrySpan { ClientSpans.recordFailure(on: retrySpan, type: error.code.description) }
                    throw error.on(node: binding.node.name)
                }
                await drop(binding)
                let retry = StatementRetry.mayRetry(
                    after: error, attempt: attempt, maxAttempts: cluster.configuration.maxAttempts,
                    inTransaction: inTransaction,
                    idempotent: idempotent() || ClusterDriver.statementsAreIdempotent)
                guard retry else {
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

    /// Keeps whether the backend reports a transaction open after a statement on `binding`
    /// (a statement that failed connection-class leaves the last known answer).
    private func noteTransactionStatus(of binding: NodeBinding) {
        let status = binding.connection.transactionStatus
        guard status != .unknown else { return }
        state.withLock { $0.serverTransaction = status != .idle }
    }

    /// The current binding if its node still serves the target, else (outside
    /// a transaction) a new one on another node.
    private func usableBinding(excluding excluded: Set<String>) async throws(SQLError) -> NodeBinding {
        let (current, closed, inTransaction) = state.withLock { ($0.binding, $0.closed, $0.holdsTransaction) }
        if closed { throw SQLError(.closed, message: "the cluster connection is closed") }
        // A transaction stays on its connection while the connection works: a node ejected by a
        // check or by another connection's failure, lagging, removed, or on a primary a
        // read-your-writes statement moved to, still finishes the work it has under way.
        if let current, current.connection.isValid, inTransaction || current.node.serves(request) {
            return current
        }
        if inTransaction {
            let node = current?.node.name ?? "none"
            throw SQLError(
                .nodeChanged, message: "the connection to the node failed during the transaction; it is lost", node: node)
        }
        guard await rebinding.lock() else { throw SQLError(.cancelled, message: "cancelled while moving to another node") }
        defer { rebinding.unlock() }
        // Another caller may have moved the connection meanwhile.
        let again = state.withLock { $0.binding }
        if let again, again.connection.isValid, again.node.serves(request) { return again }
        if let again { await drop(again) }
        let fresh = try await cluster.open(request, excluding: excluded)
        let kept = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.binding = fresh
            state.serverTransaction = false
            return true
        }
        guard kept else {
            await fresh.connection.close()
            throw SQLError(.closed, message: "the cluster connection is closed")
        }
        return fresh
    }

    private func drop(_ binding: NodeBinding) async {
        let dropped = state.withLock { state -> Bool in
            guard state.binding?.connection === binding.connection else { return false }
            state.binding = nil
            state.serverTransaction = false  // it ended with its connection
            return true
        }
        if dropped { await binding.connection.close() }
    }
}

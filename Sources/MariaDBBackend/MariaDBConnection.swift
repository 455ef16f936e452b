import CMariaDB
import ConnectionKit
import Foundation
import Logging
import SQLCore
import SocketReactor

/// A connection to MariaDB or MySQL over Connector/C's non-blocking API.
///
/// No call blocks a thread: connecting and every statement run the
/// `mysql_*_start` / `mysql_*_cont` calls, waiting for the socket through
/// `SocketReactor`. Parameterized statements run as server-side prepared
/// statements (binary protocol, typed binds), cached per connection;
/// statements without parameters run as plain queries, so a schema script may
/// hold several statements. One statement runs at a time (an `AsyncLock`).
///
/// The session uses UTC (`time_zone = '+00:00'`), so `TIMESTAMP` columns
/// round-trip as `SQLTimestamp` instants, and counts rows *matched* by an
/// `UPDATE` (`CLIENT_FOUND_ROWS`), like PostgreSQL and SQLite.
///
/// Cancelling the calling task sends `KILL QUERY` over a short-lived second
/// connection (on a helper thread); the statement then fails with
/// `SQLError.Code.cancelled`, or the connection is given up as broken if the
/// server does not answer within 5 s.
public final class MariaDBConnection: SQLConnection, @unchecked Sendable {
    // @unchecked: `mysql` and `statements` are used only inside `session.exclusive`
    // or `session.close` (or before the connection is shared).
    let mysql: UnsafeMutablePointer<MYSQL>
    /// The gate, status and redaction every server connection shares.
    let session: ServerSession
    let configuration: MariaDBConfiguration
    let logger: Logger
    /// The server's id for this session, the target of `KILL QUERY`.
    let serverThreadID: UInt
    var statements: [String: PreparedHandle] = [:]

    /// How many statements each connection keeps prepared on the server.
    static let preparedCacheCapacity = 256
    /// How long a cancelled statement may take to stop before the connection is given up.
    static let cancelGrace: Duration = .seconds(5)
    /// The coroutine stack Connector/C runs non-blocking calls on (its default, 60 KiB, is tight for TLS).
    static let callStackSize = 256 * 1024

    private init(mysql: UnsafeMutablePointer<MYSQL>, configuration: MariaDBConfiguration, logger: Logger) {
        self.mysql = mysql
        self.configuration = configuration
        self.logger = logger
        self.serverThreadID = UInt(mysql_thread_id(mysql))
        self.session = ServerSession(backend: "mariadb", password: configuration.password)
    }

    /// Connects without blocking a thread, within ``MariaDBConfiguration/connectTimeout``.
    ///
    /// Connector/C would look the host name up inside `_start`, on the calling
    /// thread: it is looked up off the pool first, and each of its addresses
    /// is tried in turn, as Connector/C would (unless TLS must check the
    /// certificate against the name; `localhost` is left to Connector/C too).
    static func connect(_ configuration: MariaDBConfiguration, logger: Logger) async throws(SQLError) -> MariaDBConnection {
        guard MariaDBLibrary.isInitialized else {
            throw SQLError(.misuse, message: "mysql_library_init failed", backend: "mariadb")
        }
        let deadline = SQLDeadline.earliest(ContinuousClock.now + configuration.connectTimeout) ?? .now  // the task's deadline too
        let c = configuration
        var hosts: [String?] = [c.unixSocket == nil ? c.host : nil]
        if let name = c.unixSocket == nil ? c.host : nil, c.tls != .verifyIdentity, HostResolver.needsLookup(name) {
            do {
                hosts = try await HostResolver.resolve(name, until: deadline)
            } catch {
                switch error.kind {
                case .timedOut:
                    throw SQLError(.timeout, message: "no address for \"\(name)\" within \(c.connectTimeout)", backend: "mariadb")
                case .cancelled: throw SQLError(.cancelled, message: "cancelled while looking up \"\(name)\"", backend: "mariadb")
                case .unresolved:
                    throw SQLError(
                        .connectionFailed, message: "could not resolve host name \"\(name)\": \(error.reason)", backend: "mariadb")
                }
            }
        }
        for (index, host) in hosts.enumerated() {
            do {
                return try await attempt(host: host, configuration, deadline: deadline, logger: logger)
            } catch  where error.code == .connectionFailed && index < hosts.count - 1 {
                continue  // refused or unreachable at this address: the next one
            }
        }
        throw SQLError(.connectionFailed, message: "no address to connect to", backend: "mariadb")
    }

    /// One connection attempt to `host` (an address, a name, or `nil` for the Unix socket).
    private static func attempt(
        host: String?, _ configuration: MariaDBConfiguration, deadline: ContinuousClock.Instant, logger: Logger
    ) async throws(SQLError) -> MariaDBConnection {
        guard let mysql = mysql_init(nil) else { throw SQLError(.connectionFailed, message: "out of memory", backend: "mariadb") }
        var stackSize = callStackSize
        mysql_options(mysql, MYSQL_OPT_NONBLOCK, &stackSize)
        MariaDBLibrary.applyOptions(configuration, to: mysql)
        var budget = CallBudget(deadline: deadline, cancelGrace: .zero)
        var connected: UnsafeMutablePointer<MYSQL>?
        let c = configuration
        // The arguments must outlive the whole call, not only `_start`.
        let arguments = [host, c.user, c.password, c.database, c.unixSocket].map { CText($0) }
        defer { arguments.forEach { $0?.free() } }
        do {
            try await runNonBlocking(mysql, budget: &budget) {
                mysql_real_connect_start(
                    &connected, mysql, arguments[0]?.pointer, arguments[1]?.pointer, arguments[2]?.pointer,
                    arguments[3]?.pointer, UInt32(c.port), arguments[4]?.pointer,
                    clustersql_mysql_client_flags | (c.multiStatements ? clustersql_mysql_multi_statements : 0))
            } resume: { ready in
                mysql_real_connect_cont(&connected, mysql, ready)
            }
        } catch {
            mysql_close(mysql)
            throw error == .cancelled
                ? SQLError(.cancelled, message: "cancelled while connecting to \(c.address)", backend: "mariadb")
                : SQLError(.timeout, message: "no connection to \(c.address) within \(c.connectTimeout)", backend: "mariadb")
        }
        guard connected != nil else {
            var error = MariaDBErrors.error(mysql, connecting: true).redacted(configuration)
            error.kind = .connection
            mysql_close(mysql)
            throw error
        }
        if configuration.unixSocket == nil, host != nil, let timeout = configuration.tcpUserTimeout {
            DeadPeerDetection.enable(on: Int32(mysql_get_socket(mysql)), userTimeout: timeout)
        }
        return MariaDBConnection(mysql: mysql, configuration: configuration, logger: logger)
    }

    /// The connection's socket (for tests that read its options back from the kernel).
    var socketDescriptor: Int32 { Int32(mysql_get_socket(mysql)) }

    deinit {
        if !session.isClosed {
            mysql_close(mysql)  // detaches the statements first, so freeing them does no I/O
            statements.values.forEach { $0.release() }
        }
    }

    // MARK: SQLConnection

    /// Runs a statement and returns its rows.
    public func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await run(sql, parameters).rows
    }

    /// Runs a statement (or, without parameters, a script) and returns every result set, in
    /// order: each of a `CALL`'s, each `SELECT` of a script.
    public func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        let sets = SQLResultSets()
        _ = try await run(sql, parameters, script: parameters.isEmpty, collecting: sets)
        return sets.sets
    }

    /// Runs a statement (or, without parameters, a script) and reports what it changed.
    public func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await run(sql, parameters, script: parameters.isEmpty).execution
    }

    /// Runs `sql` once per row of `batch`, all or nothing (`SQLBatchFrame`),
    /// holding the connection throughout; the query timeout applies to each
    /// round trip.
    ///
    /// An `INSERT … VALUES (…)` of one tuple whose columns keep one type goes through
    /// Connector/C's bulk execution (the rows as arrays, 10,000 to a round
    /// trip). The server then reports totals only, so each row's
    /// `rowsAffected` is known when they are all alike (0, 1 or 2 each) and
    /// `lastInsertID` is given for the first row alone; when they are not
    /// alike, or a row fails, the batch is undone and runs again a row at a
    /// time (prepared once, one round trip each), which names the failing row.
    public func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution] {
        guard !batch.isEmpty else { return [] }
        let queryTimeout = configuration.queryTimeout
        return try await exclusive(cancelGrace: Self.cancelGrace) { (budget: inout CallBudget) async throws(SQLError) -> [SQLExecution] in
            // The query timeout counts from each statement's start, not the batch's; the
            // frame's own statements (BEGIN, COMMIT, the undo) run even for a cancelled task.
            let cancelGrace = budget.cancelGrace
            func fresh(cancellable: Bool = true) -> CallBudget {
                var budget = CallBudget(
                    deadline: queryTimeout.map { .now + $0 }, cancelGrace: cancellable ? cancelGrace : nil,
                    livenessCheckAfter: self.configuration.livenessCheckAfter)
                self.watchTaskDeadline(&budget)
                return budget
            }
            func inTransaction() -> Bool { self.mysql.pointee.server_status & UInt32(SERVER_STATUS_IN_TRANS) != 0 }
            // Decided once: a re-run after an undone bulk attempt must find the connection as the batch did.
            let wasInTransaction = inTransaction()
            let frame = SQLBatchFrame(inTransaction: wasInTransaction)
            func statement(_ text: String) async throws(SQLError) {
                var budget = fresh(cancellable: false)
                _ = try await self.runText(text, budget: &budget)
            }
            if Self.suitsBulk(sql) {
                var bulkError: SQLError?
                do throws(SQLError) {
                    return try await frame.around(statement: statement) { () async throws(SQLError) -> [SQLExecution] in
                        var budget = fresh()
                        let handle = try await self.preparedHandle(for: sql, budget: &budget, force: true).0
                        switch try await self.runBulk(handle, batch, fresh: { fresh() }) {
                        case .done(let reports): return reports
                        case .runRowByRow: throw Self.bulkFallback
                        case .failed(let error):
                            // Only a row's own fault is worth a row-by-row run to name it: a cancelled
                            // task, a broken connection or a deadlock (which ended the caller's
                            // transaction) is reported as it is.
                            if Task.isCancelled || error.code == .cancelled || error.isConnectionError || error.code == .transactionConflict
                            {
                                throw error
                            }
                            bulkError = error
                            throw Self.bulkFallback
                        }
                    }
                } catch  where error.code == Self.bulkFallback.code {
                    // Undone. Run it again a row at a time, below, unless the undo could not restore
                    // the caller's transaction (then the bulk error is the answer).
                    if let bulkError, inTransaction() != wasInTransaction { throw bulkError }
                }
            }
            var handle: PreparedHandle?
            return try await frame.run(batch, statement: statement) { () async throws(SQLError) in
                var budget = fresh()
                handle = try await self.preparedHandle(for: sql, budget: &budget, force: true).0
            } row: { parameters async throws(SQLError) in
                var budget = fresh()
                return try await self.runPrepared(handle!, parameters, budget: &budget).execution
            }
        }
    }

    /// Thrown inside a bulk batch's frame to undo it before the row-by-row run; never leaves the connection.
    private static let bulkFallback = SQLError(
        SQLError.Code("clustersql.bulkFallback", defaultKind: .statement), message: "bulk fallback", backend: "mariadb")

    /// Prepares a server-side statement (kept for the connection's lifetime, shared by equal SQL).
    public func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement {
        try await exclusive(cancelGrace: Self.cancelGrace) { (budget: inout CallBudget) async throws(SQLError) in
            _ = try await self.preparedHandle(for: sql, budget: &budget, force: true)
        }
        return ConnectionCachedStatement(sql: sql) { [self] parameters throws(SQLError) in
            try await run(sql, parameters, alwaysPrepared: true)
        }
    }

    /// `BEGIN`.
    public func begin(_ options: SQLTransactionOptions) async throws(SQLError) {
        let start = options.readOnly ? "START TRANSACTION READ ONLY" : "BEGIN"
        guard let isolation = options.isolation else {
            _ = try await run(start, [])
            return
        }
        // Both in one turn on the connection. `SET TRANSACTION` holds for the next transaction only:
        // when BEGIN then fails, the level would be left pending for the pool's next borrower, so
        // the connection is given up instead.
        try await exclusive(cancelGrace: Self.cancelGrace) { (budget: inout CallBudget) async throws(SQLError) in
            _ = try await self.runText("SET TRANSACTION ISOLATION LEVEL " + isolation.sql, budget: &budget)
            do throws(SQLError) {
                _ = try await self.runText(start, budget: &budget)
            } catch {
                self.session.markBroken()
                throw error
            }
        }
    }
    /// `COMMIT`.
    public func commit() async throws(SQLError) { _ = try await run("COMMIT", []) }
    /// `ROLLBACK`, run even for a cancelled task.
    public func rollback() async throws(SQLError) { _ = try await run("ROLLBACK", [], cancellable: false) }

    /// A `COM_PING` round trip.
    public func ping() async throws(SQLError) {
        try await exclusive(cancelGrace: Self.cancelGrace) { (budget: inout CallBudget) async throws(SQLError) in
            var result: Int32 = 0
            try await self.call(&budget) {
                mysql_ping_start(&result, self.mysql)
            } resume: {
                mysql_ping_cont(&result, self.mysql, $0)
            }
            if result != 0 { throw MariaDBErrors.error(self.mysql, connecting: false) }
        }
    }

    /// Whether the server accepts writes from this session's user: `@@read_only`
    /// (a replica, or a node set read-only by its operator). Writes then fail
    /// with `SQLError.Code.readOnly`.
    package func isReadOnly() async throws(SQLError) -> Bool {
        let value = try await query("SELECT @@global.read_only", [])[0][0]
        return value != .integer(0)
    }

    /// The executor of tasks that should run their statements without a thread
    /// switch: the `SocketReactor` every connection waits on.
    public var taskExecutor: any TaskExecutor { SocketReactor.shared }

    /// `false` once closed or after a connection-class error.
    public var isValid: Bool { session.isValid }

    /// Whether a transaction is open (or `autocommit` is off), as the server reported after the last statement.
    public var transactionStatus: SQLTransactionStatus { session.transactionStatus }

    /// Closes the connection (waiting for a running statement).
    public func close() async {
        await session.close {
            let prepared = statements.values
            statements = [:]
            var budget = CallBudget(deadline: .now + .seconds(1), cancelGrace: nil)
            // mysql_close_start frees the handle when it finishes (an abandoned close has finished too),
            // and detaches the statements first, so freeing them afterwards does no I/O.
            try? await runNonBlocking(mysql, budget: &budget) {
                mysql_close_start(mysql)
            } resume: {
                mysql_close_cont(mysql, $0)
            }
            prepared.forEach { $0.release() }
        }
    }

    // MARK: running

    /// Runs `body` holding the connection, failing fast when closed, marking it broken on connection-class errors.
    func exclusive<T>(
        cancelGrace: Duration?, _ body: (inout CallBudget) async throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        let queryTimeout = configuration.queryTimeout
        var onCancel: (@Sendable () -> Void)?
        if cancelGrace != nil {
            onCancel = { if self.session.noteCancelRequested() { self.requestKill() } }
        }
        // KILL QUERY's own error is 1317 (max_statement_time's is 1969: it leaves our request unspent).
        return try await session.exclusive(
            cancellable: cancelGrace != nil, onCancel: onCancel, isCancelConfirmation: { $0.nativeCode == 1317 }
        ) { () async throws(SQLError) -> T in
            defer { session.recordTransactionStatus(transactionStatusNow()) }
            var budget = CallBudget(
                deadline: queryTimeout.map { ContinuousClock.now + $0 }, cancelGrace: cancelGrace,
                livenessCheckAfter: configuration.livenessCheckAfter)
            watchTaskDeadline(&budget)
            return try await body(&budget)
        }
    }

    /// Makes a statement's budget honour the task's deadline (`SQLDeadline`): when it passes, the
    /// statement is stopped with `KILL QUERY` as for a cancelled task.
    func watchTaskDeadline(_ budget: inout CallBudget) {
        guard let grace = budget.cancelGrace, grace > .zero, let deadline = SQLDeadline.current else { return }
        budget.softDeadline = deadline
        budget.onSoftDeadline = { if self.session.noteCancelRequested() { self.requestKill() } }
    }

    /// The server's view of the session after the last reply (`server_status`, no I/O): a
    /// transaction open, or `autocommit` off (the next statement would open one nobody commits).
    private func transactionStatusNow() -> SQLTransactionStatus {
        let flags = mysql.pointee.server_status
        if flags & UInt32(SERVER_STATUS_IN_TRANS) != 0 || flags & UInt32(SERVER_STATUS_AUTOCOMMIT) == 0 { return .inTransaction }
        return .idle
    }

    /// One non-blocking call under `budget`; a stall becomes a connection-class error.
    func call(_ budget: inout CallBudget, start: () -> Int32, resume: (Int32) -> Int32) async throws(SQLError) {
        do {
            try await runNonBlocking(mysql, budget: &budget, start: start, resume: resume)
        } catch {
            session.markBroken()
            switch error {
            case .cancelled:
                throw SQLError(
                    .cancelled, kind: .connection, message: "cancelled; the server did not stop the statement within \(Self.cancelGrace)",
                    backend: "mariadb")
            case .deadline:
                throw SQLError(.timeout, message: "no answer from \(configuration.address) within the query timeout", backend: "mariadb")
            case .serverSilent:
                throw SQLError(
                    .timeout, kind: .connection,
                    message:
                        "\(configuration.address) stopped answering: nothing for \(formatted(budget.livenessCheckAfter ?? .zero)), and no answer to a new connection within \(formatted(ServerLiveness.checkTimeout))",
                    backend: "mariadb")
            }
        }
    }
}

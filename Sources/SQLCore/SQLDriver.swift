/// A database backend: opens connections from a DSN.
///
/// Implementations are `Sendable` and hold no per-connection state, so one
/// driver value opens any number of connections concurrently. Opening is
/// `async` and honours task cancellation.
public protocol SQLDriver: Sendable {
    /// The backend's short name (`sqlite`, `postgres`, `mariadb`), used in errors and stats.
    var name: String { get }

    /// Opens a connection described by `dsn`.
    ///
    /// - Throws: ``SQLError`` with ``SQLError/Code/invalidConfiguration`` for a
    ///   malformed DSN, a connection-class code when the database cannot be
    ///   reached or opened, ``SQLError/Code/cancelled`` when the task is cancelled.
    func connect(to dsn: String) async throws(SQLError) -> any SQLConnection

    /// Opens a connection described by `dsn` and runs `setup` on it before
    /// returning it. A driver whose connections move between servers (a cluster
    /// driver) runs it on every server connection they move to. The default opens
    /// with ``connect(to:)``, then runs the setup, closing the connection when it fails.
    func connect(to dsn: String, onConnect setup: SQLSessionSetup) async throws(SQLError) -> any SQLConnection

    /// How long a pool should keep one of this driver's connections when its
    /// own configuration sets no lifetime; `nil`: as long as it works. A
    /// cluster driver sets one, so that pooled traffic rebalances over time.
    var pooledConnectionLifetime: Duration? { get }

    /// The executor on which every connection of this driver runs a statement
    /// without a thread switch (libpq's and Connector/C's non-blocking calls
    /// and their socket waits, all on the socket reactor); `nil` when there is
    /// none for the driver as a whole (SQLite has a thread per connection:
    /// see its connection's own). A task that prefers it saves the hop to and
    /// from Swift's cooperative pool on every statement; it must not block.
    var taskExecutor: (any TaskExecutor)? { get }
}

extension SQLDriver {
    /// No lifetime: a connection to a single database may be reused for as long as it works.
    public var pooledConnectionLifetime: Duration? { nil }
    /// None.
    public var taskExecutor: (any TaskExecutor)? { nil }
}

/// An open connection to one database.
///
/// SQL uses `?` for positional parameters everywhere, in every backend; a
/// literal `?` outside string literals, quoted identifiers and comments is
/// written `??` (PostgreSQL's jsonb operators `?`, `?|` and `?&` are written
/// `??`, `??|` and `??&`). Values are always bound, never spliced into the SQL text.
///
/// A connection runs one statement at a time; concurrent calls on the same
/// connection are queued in order. Cancelling the calling task cancels its
/// statement. After a connection-class error (``SQLError/isConnectionError``)
/// the connection is no longer ``isValid`` and must be closed.
public protocol SQLConnection: AnyObject, Sendable {
    /// Runs a statement and returns all its rows.
    func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows

    /// Runs a statement, or without parameters a script, and returns every result set
    /// it produced, in order: one per statement that returns rows (a PostgreSQL script's
    /// `SELECT`s, each result set of a MariaDB `CALL`, each `SELECT` of an SQLite script).
    /// Statements that return no rows (`INSERT`, `SET`, a `CALL`'s closing status) give
    /// none; ``query(_:_:)`` gives one result only (the last of a script).
    func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows]

    /// Runs a statement that changes data and returns what it affected.
    ///
    /// With no parameters, `sql` may hold several statements separated by
    /// semicolons (a schema script); they run in order, and the report is the last one's.
    func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution

    /// Runs one statement once per row of `batch` (each row is that run's
    /// parameters), all or nothing, and returns each run's report, in order.
    ///
    /// Outside a transaction the batch runs in one of its own; inside the
    /// caller's, in a savepoint. A row that fails undoes the whole batch (and
    /// only the batch) and is thrown with its index in ``SQLError/batchRow``.
    /// Each backend takes its C client's fast path: one hop to the connection
    /// thread for all rows (SQLite). An empty batch does nothing.
    func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution]

    /// Prepares a statement once for repeated execution with different parameters.
    func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement

    /// Starts a transaction with `options` (``SQLTransactionOptions``: isolation,
    /// read-only, deferrable); ``begin()`` starts one with the defaults.
    func begin(_ options: SQLTransactionOptions) async throws(SQLError)
    /// Commits the current transaction.
    func commit() async throws(SQLError)
    /// Rolls back the current transaction. It runs even when the calling task
    /// is cancelled, so that cleanup after a cancellation leaves no open transaction.
    func rollback() async throws(SQLError)

    /// Checks the connection with a round trip to the database.
    func ping() async throws(SQLError)

    /// `false` once the connection is closed or has seen a connection-class error.
    var isValid: Bool { get }

    /// Whether a transaction is open, as the backend reported it after the last
    /// statement (no round trip). A pool hands a connection to the next
    /// borrower only when it is ``SQLTransactionStatus/idle``.
    var transactionStatus: SQLTransactionStatus { get }

    /// Closes the connection, releasing its resources; waits for a running
    /// statement to finish. Calling it again does nothing.
    func close() async
}

/// A statement prepared on one connection, run many times.
public protocol SQLPreparedStatement: Sendable {
    /// The SQL text it was prepared from.
    var sql: String { get }
    /// Runs the statement and returns its rows.
    func query(_ parameters: [SQLValue]) async throws(SQLError) -> SQLRows
    /// Runs the statement and reports what it changed.
    func execute(_ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution
    /// Releases the statement; using it afterwards is a ``SQLError/Code/misuse`` error.
    func close() async
}

extension SQLConnection {
    /// Runs a statement without parameters and returns its rows.
    public func query(_ sql: String) async throws(SQLError) -> SQLRows {
        try await query(sql, [])
    }

    /// Runs a statement (or, without parameters, a script) and reports what it changed.
    public func execute(_ sql: String) async throws(SQLError) -> SQLExecution {
        try await execute(sql, [])
    }

    /// Runs a statement and returns its result set, if it has one: a driver that reads
    /// one result per statement gives no more.
    public func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        let rows = try await query(sql, parameters)
        return rows.columns.count > 0 ? [rows] : []
    }

    /// Runs a statement or script without parameters and returns every result set it produced.
    public func queryAll(_ sql: String) async throws(SQLError) -> [SQLRows] {
        try await queryAll(sql, [])
    }

    /// Starts a transaction with the default options (a bare `BEGIN`).
    public func begin() async throws(SQLError) {
        try await begin(SQLTransactionOptions())
    }

    /// Runs `body` inside a transaction: commits when it returns, rolls back when
    /// it throws, and runs it again after a conflict the database undid (``SQLTransactionRetry``
    /// says exactly when).
    ///
    /// Inside a transaction already open on this connection, it is a savepoint
    /// instead: released when `body` returns, rolled back to when it throws (the
    /// outer transaction goes on); it takes no options and never retries.
    ///
    /// A commit whose answer was lost throws ``SQLError/Code/commitOutcomeUnknown``.
    /// A failed rollback after a connection-class error is not reported separately:
    /// the error that ended the transaction is thrown and the connection is invalid.
    ///
    /// - Parameters:
    ///   - options: the isolation level, read-only, deferrable.
    ///   - retry: how often and with what pauses a conflicted transaction runs again.
    ///   - body: the transaction's work; it may run more than once.
    public func withTransaction<T: Sendable>(
        _ options: SQLTransactionOptions = SQLTransactionOptions(),
        retry: SQLTransactionRetry = .standard,
        _ body: (any SQLConnection) async throws -> T
    ) async throws -> T {
        if transactionStatus == .inTransaction || transactionStatus == .failed {
            return try await TransactionAttempt.nested(on: self, options: options, body)
        }
        return try await retry.run(reconnects: false, retried: { _ in }) { () async throws -> T in
            try await TransactionAttempt.run(on: self, options: options, body)
        }
    }
}

/// A prepared statement that stays in its connection's statement cache: it
/// runs the cached server-side statement, and closing it does nothing (the
/// connection frees its statements when it closes). The network backends use it.
package struct ConnectionCachedStatement: SQLPreparedStatement {
    /// The SQL text it was prepared from.
    package let sql: String
    private let run: @Sendable ([SQLValue]) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution)

    /// Creates the statement; `run` executes the cached statement with parameters.
    package init(
        sql: String, run: @escaping @Sendable ([SQLValue]) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution)
    ) {
        self.sql = sql
        self.run = run
    }

    /// Runs the statement and returns its rows.
    package func query(_ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await run(parameters).rows
    }

    /// Runs the statement and reports what it changed.
    package func execute(_ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await run(parameters).execution
    }

    /// Does nothing: the statement lives as long as its connection.
    package func close() async {}
}

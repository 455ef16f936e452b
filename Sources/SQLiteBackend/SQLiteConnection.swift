import ConnectionKit
import Logging
import SQLCore
import Synchronization

/// A connection to one SQLite database, running all its C calls on its own thread.
///
/// Statements are prepared once and cached per connection (see
/// ``SQLiteConfiguration/statementCacheCapacity``). Cancelling the calling task
/// interrupts the running statement (`sqlite3_interrupt`); inside a transaction
/// SQLite may then roll the whole transaction back.
public final class SQLiteConnection: SQLConnection {
    /// Open, broken (after a connection-class error) or closed; read on every statement, so an atomic.
    private enum Status: UInt8, AtomicRepresentable { case open, broken, closed }

    /// The configuration the connection was opened with.
    public let configuration: SQLiteConfiguration
    private let thread: ConnectionThread
    private let handle: SQLiteHandle
    private let status = Atomic<Status>(.open)
    /// `sqlite3_get_autocommit` after the last job, read on the connection's thread.
    private let inTransaction = Atomic<Bool>(false)
    private let logger: Logger
    private static let counter = Atomic<UInt64>(0)

    private init(configuration: SQLiteConfiguration, thread: ConnectionThread, handle: SQLiteHandle, logger: Logger) {
        self.configuration = configuration
        self.thread = thread
        self.handle = handle
        self.logger = logger
    }

    /// The connection's own thread as a task executor. A task that prefers it
    /// (`withTaskExecutorPreference(connection.taskExecutor) { ... }`) runs each
    /// statement in place, without a thread switch: many small statements then
    /// cost about what they cost in C. Only for code that does not block: such a
    /// task holds the connection's thread while it runs.
    public var taskExecutor: any TaskExecutor { thread }

    /// Opens a connection. The file is opened and checked on the connection's own thread.
    package static func open(
        _ configuration: SQLiteConfiguration,
        logger: Logger = Logger(label: "clustersql.sqlite")
    ) async throws(SQLError) -> SQLiteConnection {
        let number = counter.add(1, ordering: .relaxed).newValue
        let thread = ConnectionThread(name: "sqlite-\(number)")
        let handle = SQLiteHandle(configuration: configuration)
        do throws(SQLError) {
            try await thread.run(interrupt: nil) { () throws(SQLError) in try handle.open() }
        } catch {
            thread.shutdown()
            logger.debug("sqlite open failed", metadata: ["code": "\(error.code)"])
            throw error
        }
        if Task.isCancelled {
            _ = try? await thread.run(interrupt: nil) { handle.close() }
            thread.shutdown()
            throw SQLError(.cancelled, message: "cancelled while opening", backend: "sqlite")
        }
        logger.debug("sqlite connection opened", metadata: ["connection": "\(number)"])
        return SQLiteConnection(configuration: configuration, thread: thread, handle: handle, logger: logger)
    }

    deinit {
        let handle = self.handle
        thread.submit { handle.close() }
        thread.shutdown()
    }

    /// Finalizes an owned statement without waiting (for `deinit`).
    func finalizeLater(preparedID id: UInt64) {
        let handle = self.handle
        thread.submit { handle.finalizeOwned(id) }
    }

    /// Runs `body` on the connection's thread; connection-class errors mark the connection broken.
    func perform<T: Sendable>(
        cancellable: Bool = true,
        _ body: @escaping @Sendable (SQLiteHandle) throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        guard status.load(ordering: .acquiring) != .closed else {
            throw SQLError(.closed, message: "the connection is closed", backend: "sqlite")
        }
        let handle = self.handle
        let interrupt: (@Sendable () -> Void)? = cancellable ? { @Sendable in handle.interrupt() } : nil
        let deadline = cancellable ? SQLDeadline.current : nil
        if let deadline, deadline <= .now {
            throw SQLError(.timeout, kind: .statement, message: "the deadline passed before the statement ran", backend: "sqlite")
        }
        do throws(SQLError) {
            return try await thread.run(interrupt: interrupt) { [self] () throws(SQLError) -> T in
                handle.startJob(deadline: deadline)
                let result = Result { () throws(SQLError) -> T in
                    cancellable ? try handle.watchingCancellation { () throws(SQLError) in try body(handle) } : try body(handle)
                }
                let ended = Result { () throws(SQLError) in try handle.endReadOnlyTransactionIfOver() }
                inTransaction.store(handle.isInTransaction, ordering: .releasing)
                try ended.get()
                return try result.get()
            }
        } catch {
            if error.isConnectionError {
                _ = status.compareExchange(expected: .open, desired: .broken, ordering: .acquiringAndReleasing)
            }
            throw SQLDeadline.relabel(error)
        }
    }

    /// Runs a statement and returns all its rows.
    public func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await perform { handle throws(SQLError) in try handle.run(sql, parameters, collect: true).0 }
    }

    /// Runs a statement, or without parameters a script of several, and reports what it changed.
    public func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await perform { handle throws(SQLError) in
            parameters.isEmpty ? try handle.runScript(sql).0 : try handle.run(sql, parameters, collect: false).1
        }
    }

    /// Runs a statement, or without parameters a script, and returns every result set, in order.
    public func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        try await perform { handle throws(SQLError) in
            guard parameters.isEmpty else {
                let rows = try handle.run(sql, parameters, collect: true).0
                return rows.columns.count > 0 ? [rows] : []
            }
            return try handle.runScript(sql, collecting: true).1
        }
    }

    /// Runs `sql` once per row of `batch`, all or nothing, in one hop to the
    /// connection's thread: prepared once, then bound, stepped and reset per row.
    /// Outside a transaction it runs in one of its own (`BEGIN` with the
    /// configured ``SQLiteConfiguration/transactionMode``), inside one in a savepoint.
    public func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution] {
        guard !batch.isEmpty else { return [] }
        return try await perform { handle throws(SQLError) in try handle.runBatch(sql, batch) }
    }

    /// Prepares a statement owned by the caller; it is finalized by its `close()` or with the connection.
    public func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement {
        let id = try await perform { handle throws(SQLError) in try handle.prepareOwned(sql) }
        return SQLitePreparedStatement(connection: self, id: id, sql: sql)
    }

    /// `BEGIN` with the configured ``SQLiteConfiguration/transactionMode``; a read-only transaction
    /// is `BEGIN DEFERRED` with `PRAGMA query_only` on until it ends. SQLite's transactions are
    /// always serializable, which meets every isolation level.
    public func begin(_ options: SQLTransactionOptions) async throws(SQLError) {
        _ = try await perform { handle throws(SQLError) in try handle.begin(options) }
    }

    /// `COMMIT`.
    public func commit() async throws(SQLError) {
        _ = try await perform { handle throws(SQLError) in try handle.run("COMMIT", [], collect: false) }
    }

    /// `ROLLBACK`, run even when the task is cancelled; a no-op when no transaction is open
    /// (SQLite may already have rolled back after an interrupted statement).
    public func rollback() async throws(SQLError) {
        _ = try await perform(cancellable: false) { handle throws(SQLError) in
            guard handle.isInTransaction else { return }
            _ = try handle.run("ROLLBACK", [], collect: false)
        }
    }

    /// Runs `SELECT 1`.
    public func ping() async throws(SQLError) {
        _ = try await perform { handle throws(SQLError) in try handle.run("SELECT 1", [], collect: true) }
    }

    /// How many statements the connection's cache holds now (for diagnostics and tests).
    package func cachedStatementCount() async throws(SQLError) -> Int {
        try await perform { $0.cachedStatementCount }
    }

    /// `false` once closed or after a connection-class error.
    public var isValid: Bool { status.load(ordering: .acquiring) == .open }

    /// Whether a transaction is open (`sqlite3_get_autocommit` after the last statement).
    public var transactionStatus: SQLTransactionStatus {
        guard isValid else { return .unknown }
        return inTransaction.load(ordering: .acquiring) ? .inTransaction : .idle
    }

    /// Finalizes every statement, closes the database and ends the thread; waits
    /// for a running statement. Later calls fail with `SQLError.Code.closed`.
    public func close() async {
        guard status.exchange(.closed, ordering: .acquiringAndReleasing) != .closed else { return }
        let handle = self.handle
        _ = try? await thread.run(interrupt: nil) { handle.close() }
        thread.shutdown()
        logger.debug("sqlite connection closed")
    }
}

/// A statement prepared on a ``SQLiteConnection``.
final class SQLitePreparedStatement: SQLPreparedStatement {
    /// The SQL text.
    let sql: String
    private let connection: SQLiteConnection
    private let id: UInt64
    private let closed = Atomic<Bool>(false)

    init(connection: SQLiteConnection, id: UInt64, sql: String) {
        self.connection = connection
        self.id = id
        self.sql = sql
    }

    deinit {
        if !closed.load(ordering: .relaxed) {
            connection.finalizeLater(preparedID: id)
        }
    }

    /// Runs the statement and returns its rows.
    func query(_ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        let id = self.id
        return try await connection.perform { handle throws(SQLError) in try handle.runOwned(id, parameters, collect: true).0 }
    }

    /// Runs the statement and reports what it changed.
    func execute(_ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        let id = self.id
        return try await connection.perform { handle throws(SQLError) in try handle.runOwned(id, parameters, collect: false).1 }
    }

    /// Finalizes the statement.
    func close() async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        let id = self.id
        _ = try? await connection.perform(cancellable: false) { $0.finalizeOwned(id) }
    }
}

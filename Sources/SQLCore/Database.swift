import ConnectionKit
import Logging
import ServiceLifecycle

/// Pool settings of a ``Database``.
public struct DatabaseConfiguration: Sendable, Hashable {
    /// The name in errors, logs and metrics.
    public var name: String
    /// The most connections open at once; more callers wait. `nil`: no limit.
    public var maxOpen: Int?
    /// The most idle connections kept; returned ones beyond are closed.
    public var maxIdle: Int
    /// Connections older than this are closed instead of reused. `nil`: the
    /// driver's ``SQLDriver/pooledConnectionLifetime`` (a cluster driver's
    /// rebalancing period), else no limit.
    public var maxLifetime: Duration?
    /// Idle connections unused this long are closed.
    public var maxIdleTime: Duration?
    /// How long a caller waits for a connection when ``maxOpen`` are in use, then fails with
    /// ``SQLError/Code/poolTimeout`` (with ``Database/run()`` running; without it a
    /// caller that would wait fails at once). `nil`: no limit. Default 30 s.
    public var waitTimeout: Duration?
    /// How often an idle connection is pinged (one at a time).
    public var pingInterval: PingInterval
    /// Idle connections kept open and ready while ``Database/run()`` runs: opened at start
    /// (one every 10 ms) and again whenever lifetimes, idle times or errors took some away.
    /// ``maxIdle`` is raised to it when lower. Default 0.
    public var minIdle: Int
    /// A connection held by one `withConnection` or `withTransaction` longer than this is
    /// logged once, at warning level, with the file and line that borrowed it: while it is
    /// still held (``Database/run()`` looks every half threshold), or when it comes back if
    /// that look came late. `nil` (the default): no leak detection.
    public var leakThreshold: Duration?

    /// The time limit of each call (`query`, `execute`, `withConnection`, `withTransaction`) that
    /// names none: the pool wait, the open and every statement inside it end by then
    /// (``SQLDeadline``), with ``SQLError/Code/timeout``. `nil` (the default): none.
    public var defaultTimeout: Duration?

    /// No open limit, 2 idle connections, no lifetimes, no pings, and a wait of at most 30 s.
    public init(name: String = "database") {
        self.name = name
        self.defaultTimeout = nil
        self.minIdle = 0
        self.leakThreshold = nil
        self.maxOpen = nil
        self.maxIdle = 2
        self.maxLifetime = nil
        self.maxIdleTime = nil
        self.waitTimeout = .seconds(30)
        self.pingInterval = .disabled
    }

    var poolConfiguration: ConnectionPoolConfiguration {
        var pool = ConnectionPoolConfiguration(name: name, idleSize: max(maxIdle, minIdle))
        pool.minIdle = max(0, minIdle)
        pool.maxOpen = maxOpen
        pool.maxLifetime = maxLifetime
        pool.maxIdleTime = maxIdleTime
        pool.getTimeout = waitTimeout
        pool.pingInterval = pingInterval
        return pool
    }
}

/// What a ``Database``'s pool holds now, and what it did since it started.
public struct DatabaseStatistics: Sendable, Hashable, Codable {
    /// Connections open (in use and idle).
    public var openConnections: Int
    /// Connections in use.
    public var inUse: Int
    /// Idle connections.
    public var idle: Int
    /// Callers that had to wait for a connection, in total.
    public var waitCount: Int
    /// The total time callers waited.
    public var waitDuration: Duration
    /// Connections closed because the idle set was full.
    public var maxIdleClosed: Int
    /// Connections closed for exceeding the maximum idle time.
    public var maxIdleTimeClosed: Int
    /// Connections closed for exceeding the maximum lifetime.
    public var maxLifetimeClosed: Int
    /// Connections closed after a connection-class error or a failed ping.
    public var errorClosed: Int
    /// Connections closed because they came back holding a transaction (a body that began one
    /// and threw, `SET autocommit = 0`): never handed to the next borrower.
    public var dirtyClosed: Int
    /// Transactions run again by `withTransaction` (``SQLTransactionRetry``).
    public var transactionRetries: Int
    /// Commits whose answer was lost (``SQLError/Code/commitOutcomeUnknown``).
    public var commitOutcomesUnknown: Int
}

/// A pooled handle over any ``SQLDriver``: borrow a connection per call, or
/// pin one for a transaction. Run it as a `Service` (``run()``) so that wait
/// timeouts, lifetimes and pings work; ``close()`` shuts it down.
///
/// A connection goes back to the pool only as clean as a new one: one that
/// comes back holding a transaction (its ``SQLConnection/transactionStatus``
/// is not idle: a `withConnection` body that began one and threw, a failed
/// statement inside one, `SET autocommit = 0`) is closed, logged at warning
/// level and counted in ``DatabaseStatistics/dirtyClosed``; the server rolls
/// its transaction back. Closing costs no round trip, so it cannot hang on a
/// server that stopped answering, as a `ROLLBACK` could.
public final class Database: Service, Sendable {
    /// The configuration.
    public let configuration: DatabaseConfiguration
    private let pool: ConnectionPool<any SQLConnection, AnyClock, SQLError>
    private let logger: Logger
    private let observer: any ConnectionObserver
    /// Present when ``DatabaseConfiguration/leakThreshold`` is set.
    private let leaks: LeakDetector?
    /// Transactions run again, and commits whose answer was lost.
    private let transactionCounts = Locked<(retries: Int, unknownCommits: Int)>((0, 0))

    /// The driver's ``SQLDriver/taskExecutor``: tasks that prefer it run each
    /// statement on the threads that wait for the sockets, with no thread switch.
    ///
    /// ```swift
    /// try await withTaskExecutorPreference(db.taskExecutor) {
    ///     for id in ids { _ = try await db.query("SELECT … WHERE id = ?", [.integer(id)]) }
    /// }
    /// ```
    public let taskExecutor: (any TaskExecutor)?

    /// Creates a database handle; connections are opened on demand with `driver` and `dsn`.
    ///
    /// - Parameters:
    ///   - driver: opens the connections.
    ///   - dsn: what the driver connects to (for a cluster driver, the target role).
    ///   - configuration: the pool's limits, lifetimes and timeouts.
    ///   - onConnect: what runs on every new connection before its first use (``SQLSessionSetup``);
    ///     a failing one fails that open with its error.
    ///   - observer: told of every dial, close and wait (`MetricsObserver` counts them).
    ///   - logger: where the pool logs.
    ///   - clock: the clock of the wait timeout, lifetimes, idle times and pings (the process's
    ///     `ContinuousClock` by default; a `ManualClock` makes tests of them deterministic).
    public init(
        driver: any SQLDriver,
        dsn: String,
        configuration: DatabaseConfiguration = .init(),
        onConnect: SQLSessionSetup? = nil,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.database"),
        clock: AnyClock = .continuous
    ) {
        var configuration = configuration
        configuration.maxLifetime = configuration.maxLifetime ?? driver.pooledConnectionLifetime
        self.taskExecutor = driver.taskExecutor
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
        self.leaks = configuration.leakThreshold.map {
            LeakDetector(threshold: $0, clock: clock, logger: logger, database: configuration.name)
        }
        let lifecycle = ConnectionLifecycle<any SQLConnection, SQLError>(
            dial: { () async throws(SQLError) in
                guard let onConnect else { return try await driver.connect(to: dsn) }
                return try await driver.connect(to: dsn, onConnect: onConnect)
            },
            close: { await $0.close() },
            ping: { try await $0.ping() })
        pool = ConnectionPool(
            configuration: configuration.poolConfiguration, lifecycle: lifecycle, clock: clock, observer: observer, logger: logger)
    }

    /// Drives the pool's timers until ``close()`` or shutdown.
    public func run() async throws {
        guard let leaks else {
            try await pool.run()
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await leaks.watch() }
            defer { group.cancelAll() }
            try await pool.run()
        }
    }

    /// Whether ``run()`` is active.
    public var isRunning: Bool { pool.isRunning }

    /// Closes idle connections now and in-use ones when they are returned; waiters fail.
    public func close() async {
        await pool.close()
    }

    /// Runs `body` on a borrowed connection. A connection that saw a
    /// connection-class error, is no longer valid, or still holds a transaction
    /// when `body` ends is closed, not reused. Throws what `body` throws, or the
    /// ``SQLError`` of a connection that could not be had (opening it failed, the wait
    /// timed out, the pool was closed, the task was cancelled). `timeout` bounds the whole call
    /// (``SQLDeadline``; `nil`: ``DatabaseConfiguration/defaultTimeout``); `file` and `line` name
    /// the caller in a leak report (``DatabaseConfiguration/leakThreshold``).
    public func withConnection<T>(
        timeout: Duration? = nil, file: StaticString = #fileID, line: UInt = #line, _ body: (any SQLConnection) async throws -> T
    ) async throws -> T {
        try await SQLDeadline.within(timeout ?? configuration.defaultTimeout) { () async throws -> T in
            try await withBorrowed(file: file, line: line, body)
        }
    }

    /// ``withConnection(timeout:file:line:_:)``'s work, under the deadline in force.
    private func withBorrowed<T>(file: StaticString, line: UInt, _ body: (any SQLConnection) async throws -> T) async throws -> T {
        let lease = try await borrow(file: file, line: line)
        let connection = lease.connection
        do {
            let result = try await body(connection)
            await giveBack(lease)
            return result
        } catch {
            await giveBack(lease, failedWith: error)
            throw error
        }
    }

    /// Runs `body` in a transaction on one pinned connection: commits when it
    /// returns, rolls back when it throws, and runs it again, on a connection borrowed
    /// anew, after a conflict the database undid or a connection lost before `COMMIT`
    /// (``SQLTransactionRetry`` says exactly when; each new run is counted in
    /// ``DatabaseStatistics/transactionRetries``). Through a cluster driver the new
    /// connection may be on another node.
    ///
    /// A commit whose answer was lost throws ``SQLError/Code/commitOutcomeUnknown``
    /// (counted in ``DatabaseStatistics/commitOutcomesUnknown``) and is never run
    /// again. The connection goes back to the pool only in a clean state: when the
    /// rollback or commit cannot be confirmed it is discarded.
    ///
    /// - Parameters:
    ///   - options: the isolation level, read-only, deferrable.
    ///   - retry: how often and with what pauses the transaction runs again.
    ///   - timeout: the time limit of the whole call, retries included (``SQLDeadline``);
    ///     `nil`: ``DatabaseConfiguration/defaultTimeout``.
    ///   - file: where the connection is borrowed, for leak reports (``DatabaseConfiguration/leakThreshold``).
    ///   - line: the line of `file`.
    ///   - body: the transaction's work, on the pinned connection; it may run more
    ///     than once. A `withTransaction` on that connection inside it is a savepoint.
    public func withTransaction<T: Sendable>(
        _ options: SQLTransactionOptions = SQLTransactionOptions(),
        retry: SQLTransactionRetry = .standard,
        timeout: Duration? = nil,
        file: StaticString = #fileID, line: UInt = #line,
        _ body: (any SQLConnection) async throws -> T
    ) async throws -> T {
        try await SQLDeadline.within(timeout ?? configuration.defaultTimeout) { () async throws -> T in
            try await runTransaction(options, retry: retry, file: file, line: line, body)
        }
    }

    /// ``withTransaction(_:retry:timeout:file:line:_:)``'s work, under the deadline in force.
    private func runTransaction<T: Sendable>(
        _ options: SQLTransactionOptions, retry: SQLTransactionRetry, file: StaticString, line: UInt,
        _ body: (any SQLConnection) async throws -> T
    ) async throws -> T {
        try await retry.run(reconnects: true, retried: { _ in transactionRetried() }) { () async throws -> T in
            let lease = try await borrow(file: file, line: line)
            do throws(TransactionFailure) {
                let result = try await TransactionAttempt.run(on: lease.connection, options: options, body)
                await giveBack(lease)
                return result
            } catch {
                if (error.error as? SQLError)?.code == .commitOutcomeUnknown { commitOutcomeWasLost() }
                await giveBack(lease, failedWith: error.error)
                throw error
            }
        }
    }

    /// Counts a transaction run again, here and in the observer.
    private func transactionRetried() {
        transactionCounts.withLock { $0.retries += 1 }
        observer.transactionRetried()
    }

    /// Counts a commit whose answer was lost, here and in the observer.
    private func commitOutcomeWasLost() {
        transactionCounts.withLock { $0.unknownCommits += 1 }
        observer.commitOutcomeUnknown()
    }

    /// Borrows a pooled connection; what the pool throws becomes an ``SQLError``.
    private func borrow(
        file: StaticString = #fileID, line: UInt = #line
    ) async throws(SQLError) -> ConnectionPool<any SQLConnection, AnyClock, SQLError>.Lease {
        do throws(ManagedFailure<SQLError>) {
            let lease = try await pool.borrow(waitingAtMost: SQLDeadline.remaining(within: nil))
            leaks?.borrowed(lease.connection, file: file, line: line)
            return lease
        } catch {
            switch error {
            case .failed(let error): throw error  // the driver's, from opening a connection
            case .refused(let error) where error.code == .poolTimeout && SQLDeadline.hasPassed:
                throw SQLError(
                    .timeout, kind: .statement, message: "the deadline passed while waiting for a pooled connection (\(error.message))",
                    underlying: error)
            case .refused(let error): throw Self.sqlError(error)
            }
        }
    }

    /// The pool's own errors, said in SQLCore's codes.
    static func sqlError(_ error: ConnectionKitError) -> SQLError {
        let code: SQLError.Code =
            switch error.code {
            case .poolTimeout, .notRunning: .poolTimeout
            case .cancelled: .cancelled
            default: .closed  // .shutdown: the pool was closed
            }
        return SQLError(code, kind: .statement, message: "\(error.source): \(error.message)", underlying: error)
    }

    /// Runs `body` on a borrowed connection, with typed errors (`query` and `execute`).
    private func withPooledConnection<T>(
        _ timeout: Duration?, _ body: (any SQLConnection) async throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        guard let limit = timeout ?? configuration.defaultTimeout else { return try await withPooledConnection(body) }
        return try await SQLDeadline.within(limit) { () async throws(SQLError) -> T in try await withPooledConnection(body) }
    }

    /// Runs `body` on a borrowed connection, with typed errors, under the deadline in force.
    private func withPooledConnection<T>(_ body: (any SQLConnection) async throws(SQLError) -> T) async throws(SQLError) -> T {
        let lease = try await borrow()
        do {
            let result = try await body(lease.connection)
            await giveBack(lease)
            return result
        } catch {
            await giveBack(lease, failedWith: error)
            throw error
        }
    }

    /// Returns a borrowed connection to the pool if it is as clean as a new one; closes it when
    /// it is broken (`error` is connection-class, or it is no longer valid) or holds a transaction.
    private func giveBack(_ lease: ConnectionPool<any SQLConnection, AnyClock, SQLError>.Lease, failedWith error: (any Error)? = nil) async
    {
        let connection = lease.connection
        leaks?.returned(connection)
        if (error as? SQLError)?.isConnectionError == true || !connection.isValid {
            await pool.release(lease, closing: .broken)
            return
        }
        let status = connection.transactionStatus
        guard status == .idle else {
            logger.warning(
                "a connection came back holding a transaction; closed, not pooled",
                metadata: ["database": "\(configuration.name)", "transaction": "\(status)"])
            await pool.release(lease, closing: .dirty)
            return
        }
        await pool.release(lease)
    }

    /// Runs a statement on a pooled connection and returns its rows.
    /// `timeout` bounds the pool wait, the open and the statement (``SQLDeadline``; `nil`:
    /// ``DatabaseConfiguration/defaultTimeout``).
    public func query(_ sql: String, _ parameters: [SQLValue] = [], timeout: Duration? = nil) async throws(SQLError) -> SQLRows {
        try await withPooledConnection(timeout) { connection throws(SQLError) in try await connection.query(sql, parameters) }
    }

    /// Runs a statement (or, without parameters, a script) on a pooled connection and returns
    /// every result set, in order (``SQLConnection/queryAll(_:_:)``). `timeout` bounds the
    /// call (``SQLDeadline``; `nil`: ``DatabaseConfiguration/defaultTimeout``).
    public func queryAll(_ sql: String, _ parameters: [SQLValue] = [], timeout: Duration? = nil) async throws(SQLError) -> [SQLRows] {
        try await withPooledConnection(timeout) { connection throws(SQLError) in try await connection.queryAll(sql, parameters) }
    }

    /// Runs a statement on a pooled connection and reports what it changed.
    /// `timeout` bounds the pool wait, the open and the statement (``SQLDeadline``; `nil`:
    /// ``DatabaseConfiguration/defaultTimeout``).
    public func execute(_ sql: String, _ parameters: [SQLValue] = [], timeout: Duration? = nil) async throws(SQLError) -> SQLExecution {
        try await withPooledConnection(timeout) { connection throws(SQLError) in try await connection.execute(sql, parameters) }
    }

    /// Runs `sql` once per row of `batch` on a pooled connection, all or nothing
    /// (``SQLConnection/execute(_:batch:)``), and returns each row's report.
    /// `timeout` bounds the whole batch (``SQLDeadline``; `nil`: ``DatabaseConfiguration/defaultTimeout``).
    public func execute(_ sql: String, batch: [[SQLValue]], timeout: Duration? = nil) async throws(SQLError) -> [SQLExecution] {
        try await withPooledConnection(timeout) { connection throws(SQLError) in try await connection.execute(sql, batch: batch) }
    }

    /// Current figures.
    public var statistics: DatabaseStatistics {
        let s = pool.statistics
        let transactions = transactionCounts.withLock { $0 }
        return DatabaseStatistics(
            openConnections: s.open, inUse: s.inUse, idle: s.idle, waitCount: s.waitCount, waitDuration: s.waitDuration,
            maxIdleClosed: s.closed[CloseReason.overflow.rawValue, default: 0],
            maxIdleTimeClosed: s.closed[CloseReason.maxIdleTime.rawValue, default: 0],
            maxLifetimeClosed: s.closed[CloseReason.maxLifetime.rawValue, default: 0],
            errorClosed: s.closed[CloseReason.broken.rawValue, default: 0],
            dirtyClosed: s.closed[CloseReason.dirty.rawValue, default: 0],
            transactionRetries: transactions.retries, commitOutcomesUnknown: transactions.unknownCommits)
    }
}

import CSQLite3
import ConnectionKit
import SQLCore
import Synchronization

/// One open `sqlite3*` with its statement cache and prepared statements.
///
/// Confinement: every method runs on the owning connection's
/// ``ConnectionThread``; the only exception is ``interrupt()``, which SQLite
/// allows from any thread and which ``ConnectionThread`` calls only while a job
/// of this handle runs. That is why the class may be `@unchecked Sendable`.
final class SQLiteHandle: @unchecked Sendable {
    private var db: OpaquePointer?
    private let configuration: SQLiteConfiguration
    private var cache: [String: CachedStatement] = [:]
    private var useCounter: UInt64 = 0
    private var prepared: [UInt64: OpaquePointer] = [:]
    private var nextPreparedID: UInt64 = 0
    /// Set by ``interrupt()`` until the next job starts: a cancellation that arrives between
    /// two statements of one job (a batch, a transaction closure) stops the statements after it.
    private let interruptRequested = Atomic<Bool>(false)
    /// The task whose statements run in place now (a task that prefers the connection's
    /// executor): no cancellation handler reaches them, so the progress handler polls it.
    private var watchedTask: UnsafeCurrentTask?
    /// How many virtual machine steps run between two looks at ``watchedTask``.
    private static let progressInterval: Int32 = 1_000
    /// Text and blob parameters copied here and bound without a further copy by SQLite.
    private let arena = SQLiteBindingArena()

    private struct CachedStatement {
        let statement: OpaquePointer
        var lastUse: UInt64
    }

    init(configuration: SQLiteConfiguration) {
        self.configuration = configuration
    }

    // MARK: open and close

    func open() throws(SQLError) {
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        switch configuration.mode {
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        }
        if configuration.isURI { flags |= SQLITE_OPEN_URI }
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(configuration.filename, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let error = SQLiteErrors.error(rc, db: handle)
            sqlite3_close_v2(handle)
            throw error
        }
        db = handle
        sqlite3_progress_handler(
            handle, Self.progressInterval,
            { context in
                guard let context else { return 0 }
                return Unmanaged<SQLiteHandle>.fromOpaque(context).takeUnretainedValue().isCancellationRequested ? 1 : 0
            }, Unmanaged.passUnretained(self).toOpaque())
        do throws(SQLError) {
            sqlite3_busy_timeout(
                handle,
                Int32(clamping: configuration.busyTimeout.wholeMilliseconds))
            // Reading the schema proves the file is a database (SQLITE_NOTADB otherwise).
            try runPragma("PRAGMA schema_version")
            if let journal = configuration.journalMode, configuration.mode != .readOnly, !configuration.isInMemory {
                try runPragma("PRAGMA journal_mode=\(journal)")
            }
            if let synchronous = configuration.synchronous { try runPragma("PRAGMA synchronous=\(synchronous)") }
            try runPragma("PRAGMA foreign_keys=\(configuration.foreignKeys ? "ON" : "OFF")")
        } catch {
            close()
            throw error
        }
    }

    /// Runs a pragma assembled only from validated configuration values, never user input.
    private func runPragma(_ sql: String) throws(SQLError) {
        _ = try withOneStatement(sql) { statement throws(SQLError) in try step(statement, collect: false) }
    }

    func close() {
        for statement in cache.values { sqlite3_finalize(statement.statement) }
        cache.removeAll()
        for statement in prepared.values { sqlite3_finalize(statement) }
        prepared.removeAll()
        sqlite3_close_v2(db)
        db = nil
    }

    /// Interrupts the running statement; callable from any thread (see the type's documentation).
    func interrupt() {
        interruptRequested.store(true, ordering: .relaxed)
        if let db { sqlite3_interrupt(db) }
    }

    /// The calling task's deadline (`SQLDeadline`) for the job under way: the progress handler
    /// interrupts the statement when it passes.
    private var jobDeadline: ContinuousClock.Instant?

    /// Called as a job starts: an interrupt meant for an earlier job is forgotten; `deadline`
    /// is the calling task's, if any.
    func startJob(deadline: ContinuousClock.Instant? = nil) {
        interruptRequested.store(false, ordering: .relaxed)
        jobDeadline = deadline
    }

    /// Throws `SQLError.Code.cancelled` when this job was interrupted.
    func checkInterrupted() throws(SQLError) {
        if isCancellationRequested {
            throw SQLError(.cancelled, message: "interrupted: the task was cancelled", backend: "sqlite")
        }
    }

    /// An interrupt arrived for this job, or the task running in place was cancelled.
    private var isCancellationRequested: Bool {
        interruptRequested.load(ordering: .relaxed) || watchedTask?.isCancelled == true
            || jobDeadline.map { $0 <= .now } == true
    }

    /// Runs `body` with the current task watched for cancellation: a task that runs on the
    /// connection's thread (in place) has its statements interrupted by the progress handler
    /// when it is cancelled, for the cost of a flag read every ``progressInterval`` steps,
    /// where a cancellation handler would cost two executor switches per statement. A queued
    /// job runs outside any task, so this changes nothing for it (``interrupt()`` does that).
    func watchingCancellation<T>(_ body: () throws(SQLError) -> T) throws(SQLError) -> T {
        let outcome = withUnsafeCurrentTask { task -> Result<T, SQLError> in
            let enclosing = watchedTask
            watchedTask = task
            defer { watchedTask = enclosing }
            do throws(SQLError) {
                try checkInterrupted()
                return .success(try body())
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    var isOpen: Bool { db != nil }

    // MARK: statements

    /// Runs one statement through the cache: prepare (or reuse), bind, step, reset.
    func run(_ sql: String, _ parameters: [SQLValue], collect: Bool) throws(SQLError) -> (SQLRows, SQLExecution) {
        let statement = try cachedStatement(sql)
        return try run(statement, parameters, collect: collect)
    }

    /// Runs every statement of a parameterless script in order; returns the last one's report
    /// and, when `collecting`, every result set (each statement's rows, when it has columns).
    func runScript(_ sql: String, collecting: Bool = false) throws(SQLError) -> (SQLExecution, [SQLRows]) {
        let db = try openDB()
        try SQLError.refuseNUL(in: sql, backend: "sqlite")
        var last = SQLExecution(rowsAffected: 0, lastInsertID: nil)
        var sets: [SQLRows] = []
        let failure: SQLError? = sql.withCString { start -> SQLError? in
            var cursor: UnsafePointer<CChar>? = start
            while let current = cursor, current.pointee != 0 {
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                let rc = sqlite3_prepare_v3(db, current, -1, 0, &statement, &tail)
                guard rc == SQLITE_OK else { return SQLiteErrors.error(rc, db: db, duringPrepare: true) }
                cursor = tail
                guard let statement else { continue }  // only whitespace or a comment
                defer { sqlite3_finalize(statement) }
                do throws(SQLError) {
                    let (rows, execution) = try run(statement, [], collect: collecting)
                    last = execution
                    if collecting, rows.columns.count > 0 { sets.append(rows) }
                } catch {
                    return error
                }
            }
            return nil
        }
        if let failure { throw failure }
        return (last, sets)
    }

    /// Runs `sql` once per row, all or nothing (`SQLBatchFrame`). The frame's own
    /// statements run as scripts, apart from the cache, so they never evict the batch's.
    func runBatch(_ sql: String, _ rows: [[SQLValue]]) throws(SQLError) -> [SQLExecution] {
        let frame = SQLBatchFrame(inTransaction: isInTransaction, begin: beginStatement)
        let statement = try cachedStatement(sql)
        // Each row binds every parameter anew, so the bindings are cleared once, at the end.
        defer { sqlite3_clear_bindings(statement) }
        return try frame.run(rows) { text throws(SQLError) in
            _ = try runScript(text)
        } row: { parameters throws(SQLError) in
            try checkInterrupted()
            return try run(statement, parameters, collect: false, clearingBindings: false).1
        }
    }

    /// Prepares a statement owned by a ``SQLitePreparedStatement``; returns its id.
    func prepareOwned(_ sql: String) throws(SQLError) -> UInt64 {
        let statement = try prepare(sql, persistent: true)
        nextPreparedID += 1
        prepared[nextPreparedID] = statement
        return nextPreparedID
    }

    func runOwned(_ id: UInt64, _ parameters: [SQLValue], collect: Bool) throws(SQLError) -> (SQLRows, SQLExecution) {
        guard let statement = prepared[id] else {
            throw SQLError(.misuse, message: "the prepared statement is closed", backend: "sqlite")
        }
        return try run(statement, parameters, collect: collect)
    }

    func finalizeOwned(_ id: UInt64) {
        if let statement = prepared.removeValue(forKey: id) { sqlite3_finalize(statement) }
    }

    var cachedStatementCount: Int { cache.count }

    var isInTransaction: Bool { db.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// `BEGIN` with the configured ``SQLiteConfiguration/transactionMode``.
    var beginStatement: String { "BEGIN \(configuration.transactionMode.rawValue.uppercased())" }

    /// Whether `PRAGMA query_only` is on for the read-only transaction open now.
    private var queryOnlyForTransaction = false

    /// Starts a transaction: a read-only one is `BEGIN DEFERRED` (it never takes the write lock)
    /// with `query_only` on until it ends; the others `BEGIN` with the configured mode. SQLite's
    /// transactions are serializable: every isolation level is met as it is.
    func begin(_ options: SQLTransactionOptions) throws(SQLError) {
        guard options.readOnly else {
            _ = try run(beginStatement, [], collect: false)
            return
        }
        _ = try run("BEGIN DEFERRED", [], collect: false)
        do {
            // A session already read-only (a session setup's `PRAGMA query_only = 1`) stays as it is.
            let already = try run("PRAGMA query_only", [], collect: true).0.first?[0] == .integer(1)
            guard !already else { return }
            _ = try run("PRAGMA query_only = 1", [], collect: false)
            queryOnlyForTransaction = true
        } catch {
            _ = try? run("ROLLBACK", [], collect: false)
            throw error
        }
    }

    /// Turns `query_only` off once the read-only transaction that turned it on has ended, however
    /// it ended (a commit, a rollback, the caller's own `COMMIT`), so that the connection is as a
    /// new one. When that fails the connection is not: the error is connection-class, and its pool
    /// closes it.
    func endReadOnlyTransactionIfOver() throws(SQLError) {
        guard queryOnlyForTransaction, !isInTransaction else { return }
        do throws(SQLError) {
            _ = try run("PRAGMA query_only = 0", [], collect: false)
        } catch {
            throw SQLError(
                .misuse, kind: .connection,
                message: "could not turn query_only off after a read-only transaction: \(error.message)", backend: "sqlite",
                underlying: error)
        }
        queryOnlyForTransaction = false
    }

    // MARK: internals

    private func openDB() throws(SQLError) -> OpaquePointer {
        guard let db else { throw SQLError(.closed, message: "the connection is closed", backend: "sqlite") }
        return db
    }

    private func withOneStatement<T>(_ sql: String, _ body: (OpaquePointer) throws(SQLError) -> T) throws(SQLError) -> T {
        let statement = try prepare(sql, persistent: false)
        defer { sqlite3_finalize(statement) }
        return try body(statement)
    }

    private func cachedStatement(_ sql: String) throws(SQLError) -> OpaquePointer {
        useCounter += 1
        if let index = cache.index(forKey: sql) {  // one hash of the SQL text per statement
            cache.values[index].lastUse = useCounter
            return cache.values[index].statement
        }
        let statement = try prepare(sql, persistent: true)
        if cache.count >= max(1, configuration.statementCacheCapacity),
            let oldest = cache.min(by: { $0.value.lastUse < $1.value.lastUse })
        {
            sqlite3_finalize(oldest.value.statement)
            cache.removeValue(forKey: oldest.key)
        }
        cache[sql] = CachedStatement(statement: statement, lastUse: useCounter)
        return statement
    }

    private func prepare(_ sql: String, persistent: Bool) throws(SQLError) -> OpaquePointer {
        let db = try openDB()
        try SQLError.refuseNUL(in: sql, backend: "sqlite")
        var statement: OpaquePointer?
        var tailIsEmpty = true
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let rc = sql.withCString { start -> Int32 in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(db, start, -1, flags, &statement, &tail)
            if rc == SQLITE_OK, let tail, tail.pointee != 0 {
                // A further statement (not just whitespace or a comment) is an error.
                var extra: OpaquePointer?
                if sqlite3_prepare_v3(db, tail, -1, 0, &extra, nil) == SQLITE_OK {
                    tailIsEmpty = extra == nil
                } else {
                    tailIsEmpty = false
                }
                sqlite3_finalize(extra)
            }
            return rc
        }
        guard rc == SQLITE_OK else { throw SQLiteErrors.error(rc, db: db, duringPrepare: true) }
        guard let statement else {
            throw SQLError(.syntaxError, message: "the SQL text holds no statement", backend: "sqlite")
        }
        guard tailIsEmpty else {
            sqlite3_finalize(statement)
            throw SQLError(
                .misuse, message: "the SQL text holds several statements; only a parameterless execute runs scripts", backend: "sqlite")
        }
        return statement
    }

    private func run(
        _ statement: OpaquePointer, _ parameters: [SQLValue], collect: Bool, clearingBindings: Bool = true
    ) throws(SQLError) -> (SQLRows, SQLExecution) {
        let db = try openDB()
        defer {
            sqlite3_reset(statement)
            if clearingBindings { sqlite3_clear_bindings(statement) }
        }
        try SQLiteValues.bind(parameters, to: statement, db: db, arena: arena)
        let before = sqlite3_total_changes64(db)
        let rows = try step(statement, collect: collect)
        let changed = sqlite3_total_changes64(db) != before
        let execution = SQLExecution(
            rowsAffected: changed ? Int(sqlite3_changes64(db)) : 0,
            lastInsertID: sqlite3_last_insert_rowid(db))
        return (rows, execution)
    }

    /// No rows: what a statement run for its effect returns, made once.
    private static let noRows = SQLRows(columns: SQLColumns([]), rows: [])

    private func step(_ statement: OpaquePointer, collect: Bool) throws(SQLError) -> SQLRows {
        guard collect else {
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { return Self.noRows }
                guard rc == SQLITE_ROW else { throw SQLiteErrors.error(rc, db: db) }
            }
        }
        let reader = SQLiteValues.RowReader(statement: statement)
        var rows = SQLRowsBuilder(columns: reader.columns)
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw SQLiteErrors.error(rc, db: db) }
            reader.readRow(into: &rows)
        }
        return rows.build()
    }
}

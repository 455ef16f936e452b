import CLibPQ
import ConnectionKit
import Foundation
import Logging
import SQLCore
import SocketReactor

/// A connection to PostgreSQL over libpq's non-blocking API.
///
/// No call blocks a thread: connecting runs `PQconnectStartParams` /
/// `PQconnectPoll` and queries run `PQsendQueryParams` / `PQconsumeInput`,
/// waiting for the socket through `SocketReactor`. One statement runs at a
/// time (an `AsyncLock`). Cancelling the calling task sends a cancel
/// request (`PQcancel`, on a helper thread) and the statement fails with
/// `SQLError.Code.cancelled`; the connection is then given up (``isValid`` is
/// false), since a cancel request may still reach the next statement. Server
/// notices go to the logger, never to stderr.
public final class PostgresConnection: SQLConnection, @unchecked Sendable {
    // @unchecked: `conn` is used only inside `session.exclusive` or `session.close`
    // (or before the connection is shared); `canceller` is libpq's own, thread-safe object.
    let conn: OpaquePointer
    /// The gate, status and redaction every server connection shares.
    let session: ServerSession
    private let canceller: CancelHandle
    let configuration: PostgresConfiguration
    private let notices: NoticeSink
    var preparedNames: [String: PreparedName] = [:]
    /// A statement prepared on the server: its name there, and how many parameters it takes.
    struct PreparedName: Sendable {
        let name: String
        let parameterCount: Int
    }

    /// The parameter arrays handed to libpq, reused by every statement.
    let bound = PostgresParameters()
    /// The columns of the last result, reused while results keep the same names and types.
    private var lastColumns: (columns: SQLColumns, types: [Oid])?

    private init(conn: OpaquePointer, configuration: PostgresConfiguration, notices: NoticeSink) {
        self.conn = conn
        self.configuration = configuration
        self.notices = notices
        self.canceller = CancelHandle(pointer: PQgetCancel(conn))
        self.session = ServerSession(backend: "postgres", password: configuration.password)
    }

    /// Connects without blocking a thread, within ``PostgresConfiguration/connectTimeout``.
    static func connect(_ configuration: PostgresConfiguration, logger: Logger) async throws(SQLError) -> PostgresConnection {
        let deadline = SQLDeadline.earliest(ContinuousClock.now + configuration.connectTimeout) ?? .now  // the task's deadline too
        // Before the DSN, so that its own settings win: a dead peer or a black-holed network is
        // noticed within 30 s (ClusterSQL's defaults; libpq leaves both to the system's hours).
        var keywords = Self.deadPeerDefaults.map(\.keyword) + ["dbname", "client_encoding"]
        var values = Self.deadPeerDefaults.map(\.value) + [configuration.dsn, "UTF8"]
        // Later keywords override the DSN's; libpq then never looks a name up on this thread.
        for (keyword, value) in try await configuration.resolvedHosts(until: deadline) {
            keywords.append(keyword)
            values.append(value)
        }
        let conn: OpaquePointer? = withCStrings(keywords) { k in
            withCStrings(values) { v in PQconnectStartParams(k, v, 1) }
        }
        guard let conn, PQstatus(conn) != CONNECTION_BAD else {
            let error = PostgresErrors.connectionError(conn, whileConnecting: true)
            PQfinish(conn)
            throw error.redacted(configuration)
        }
        var poll = PGRES_POLLING_WRITING
        while true {
            let direction: SocketReactor.Direction
            switch poll {
            case PGRES_POLLING_OK:
                PQsetnonblocking(conn, 1)
                let notices = NoticeSink(logger: logger)
                notices.install(on: conn)
                return PostgresConnection(conn: conn, configuration: configuration, notices: notices)
            case PGRES_POLLING_READING: direction = .readable
            case PGRES_POLLING_WRITING: direction = .writable
            default:
                let error = PostgresErrors.connectionError(conn, whileConnecting: true)
                PQfinish(conn)
                throw error.redacted(configuration)
            }
            do {
                try await SocketReactor.shared.wait(for: PQsocket(conn), direction, until: deadline)
            } catch {
                PQfinish(conn)
                throw error == .cancelled
                    ? SQLError(.cancelled, message: "cancelled while connecting", backend: "postgres")
                    : SQLError(.timeout, message: "no connection within \(configuration.connectTimeout)", backend: "postgres")
            }
            poll = PQconnectPoll(conn)
        }
    }

    /// TCP keepalives (a probe after 10 s idle, every 5 s, 3 unanswered: gone after 25 s) and
    /// `tcp_user_timeout` (data unacknowledged for 30 s: gone), unless the DSN sets them.
    static let deadPeerDefaults: [(keyword: String, value: String)] = [
        ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
    ]

    /// The connection's socket (for tests that read its options back from the kernel).
    var socketDescriptor: Int32 { PQsocket(conn) }

    deinit {
        if !session.isClosed {
            PQfinish(conn)
        }
    }

    /// The spans of a traced connection: the server's address, port and database as libpq resolved them.
    func spans(_ tracing: TracingConfiguration) -> ClientSpans? {
        func text(_ value: UnsafeMutablePointer<CChar>?) -> String? { value.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        return ClientSpans(
            tracing, system: "postgresql", address: text(PQhost(conn)), port: text(PQport(conn)).flatMap { Int($0) },
            namespace: text(PQdb(conn)))
    }

    // MARK: SQLConnection

    /// Runs a statement and returns its rows.
    public func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await run(sql, parameters).rows
    }

    /// Runs a statement (or, without parameters, a script) and returns every result set, in order.
    public func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        let sets = SQLResultSets()
        _ = try await run(sql, parameters, collecting: sets)
        return sets.sets
    }

    /// Runs a statement (or, without parameters, a script) and reports the rows it affected.
    public func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await run(sql, parameters).execution
    }

    /// Prepares a named server-side statement.
    public func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement {
        let name = try await exclusive(cancellable: true) { () async throws(SQLError) -> PreparedName in
            try await self.preparedName(for: sql, force: true)!
        }
        return ConnectionCachedStatement(sql: sql) { [self] parameters throws(SQLError) in
            try await run(sql, parameters, prepared: name)
        }
    }

    /// How many statements each connection keeps prepared on the server.
    static let preparedCacheCapacity = 256

    /// The server-side prepared statement for `sql`, preparing it on first use
    /// (one extra round trip, once). Past the cache's capacity, parameterized
    /// statements run unnamed (`nil`) unless `force`d.
    func preparedName(for sql: String, force: Bool) async throws(SQLError) -> PreparedName? {
        if let cached = preparedNames[sql] { return cached }
        guard force || preparedNames.count < Self.preparedCacheCapacity else { return nil }
        try SQLError.refuseNUL(in: sql, backend: "postgres")
        let name = "clustersql_\(preparedNames.count + 1)"
        let (text, count) = SQLPlaceholders.numbered(sql)
        guard PQsendPrepare(conn, name, text, 0, nil) == 1 else {
            throw PostgresErrors.connectionError(conn, whileConnecting: false)
        }
        _ = try await receive(cancellable: true)
        let prepared = PreparedName(name: name, parameterCount: count)
        preparedNames[sql] = prepared
        return prepared
    }

    /// `BEGIN`.
    public func begin(_ options: SQLTransactionOptions) async throws(SQLError) { _ = try await run(options.postgresBegin, []) }
    /// `COMMIT`.
    public func commit() async throws(SQLError) { _ = try await run("COMMIT", []) }
    /// `ROLLBACK`, run even for a cancelled task.
    public func rollback() async throws(SQLError) { _ = try await run("ROLLBACK", [], cancellable: false) }
    /// `SELECT 1`.
    public func ping() async throws(SQLError) { _ = try await run("SELECT 1", []) }

    /// The executor of tasks that should run their statements without a thread
    /// switch: the `SocketReactor` every connection waits on.
    public var taskExecutor: any TaskExecutor { SocketReactor.shared }

    /// `false` once closed or after a connection-class error. It reads only the
    /// locked status: libpq's own state may be changing under a statement in flight.
    public var isValid: Bool { session.isValid }

    /// Whether a transaction is open, as libpq reported it after the last statement.
    public var transactionStatus: SQLTransactionStatus { session.transactionStatus }

    /// Closes the connection (waiting for a running statement).
    public func close() async {
        await session.close {
            PQfinish(conn)
        }
    }

    // MARK: running statements

    func run(
        _ sql: String, _ parameters: [SQLValue], prepared name: PreparedName? = nil, cancellable: Bool = true,
        collecting sets: SQLResultSets? = nil
    ) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution) {
        try await exclusive(cancellable: cancellable) { () throws(SQLError) in
            var statement = name
            if statement == nil, !parameters.isEmpty {
                statement = try await self.preparedName(for: sql, force: false)
            }
            try self.send(sql, parameters, prepared: statement)
            return try await self.receive(cancellable: cancellable, collecting: sets)
        }
    }

    /// Runs `body` holding the connection, failing fast when closed, marking it broken on connection-class
    /// errors, and keeping libpq's transaction status once it is done.
    func exclusive<T>(cancellable: Bool, _ body: () async throws(SQLError) -> T) async throws(SQLError) -> T {
        try await session.exclusive(cancellable: cancellable, isCancelConfirmation: Self.isCancelConfirmation) {
            () async throws(SQLError) -> T in
            defer { session.recordTransactionStatus(Self.transactionStatus(of: conn)) }
            return try await body()
        }
    }

    /// libpq's view of the session after its last result (`PQtransactionStatus`, no I/O).
    static func transactionStatus(of conn: OpaquePointer) -> SQLTransactionStatus {
        switch PQtransactionStatus(conn) {
        case PQTRANS_IDLE: .idle
        case PQTRANS_INTRANS: .inTransaction
        case PQTRANS_INERROR: .failed
        default: .unknown  // PQTRANS_ACTIVE (a result not yet read) or PQTRANS_UNKNOWN (the connection is bad)
        }
    }

    func send(_ sql: String, _ parameters: [SQLValue], prepared: PreparedName?) throws(SQLError) {
        if prepared == nil { try SQLError.refuseNUL(in: sql, backend: "postgres") }
        let (text, count) = prepared.map { (sql, $0.parameterCount) } ?? SQLPlaceholders.numbered(sql)
        let name = prepared?.name
        guard count == parameters.count || (parameters.isEmpty && name == nil) else {
            throw SQLError(
                .parameterCountMismatch, message: "the statement has \(count) placeholders but \(parameters.count) values were given",
                backend: "postgres")
        }
        guard parameters.count <= Self.maxParameters else {
            throw SQLError(
                .tooManyParameters, message: "\(parameters.count) parameters; PostgreSQL's protocol carries at most \(Self.maxParameters)",
                backend: "postgres")
        }
        try bound.bind(parameters)
        let sent: Int32 = bound.withPointers { types, values, lengths, formats in
            if let name {
                return PQsendQueryPrepared(conn, name, Int32(parameters.count), values, lengths, formats, 0)
            }
            if parameters.isEmpty { return PQsendQuery(conn, text) }
            return PQsendQueryParams(conn, text, Int32(parameters.count), types, values, lengths, formats, 0)
        }
        guard sent == 1 else { throw PostgresErrors.sendError(conn) }
    }

    /// The most parameters one statement may bind (the protocol counts them in 16 bits).
    static let maxParameters = 65_535

    /// Flushes the request, then reads every result; the last one answers, the first error wins.
    ///
    /// Socket waits ignore cancellation: a cancelled task sends a cancel request
    /// and keeps reading until the server answers (57014), so the connection
    /// stays in step; if no answer comes within 5 s it is given up as broken.
    func receive(
        cancellable: Bool, collecting sets: SQLResultSets? = nil
    ) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution) {
        let queryDeadline = configuration.queryTimeout.map { ContinuousClock.now + $0 }
        // The task's deadline (SQLDeadline): when it passes, the statement is cancelled as for a cancelled task.
        let taskDeadline = cancellable ? SQLDeadline.current : nil
        var cancelDeadline: ContinuousClock.Instant?
        var heard = ContinuousClock.now  // the last sign of life from the server
        var outcome: Result<(SQLRows, SQLExecution), SQLError> = .success(
            (SQLRows(columns: SQLColumns([]), rows: []), SQLExecution(rowsAffected: 0, lastInsertID: nil)))
        var failed = false
        let finished: Result<Void, SQLError> = await withTaskCancellationHandler {
            do throws(SQLError) {
                while true {
                    if cancellable, Task.isCancelled, cancelDeadline == nil { cancelDeadline = ContinuousClock.now + .seconds(5) }
                    if let taskDeadline, cancelDeadline == nil, taskDeadline <= .now {
                        requestCancel()
                        cancelDeadline = ContinuousClock.now + .seconds(5)
                    }
                    let deadline = cancelDeadline.map { cancel in queryDeadline.map { min($0, cancel) } ?? cancel } ?? queryDeadline
                    let soft = cancelDeadline == nil ? taskDeadline : nil
                    let flushed = PQflush(conn)
                    if flushed < 0 { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                    if flushed == 1 {
                        try await waitForSocket(.writable, deadline: deadline, soft: soft, cancelled: cancelDeadline != nil, heard: &heard)
                        continue
                    }
                    if PQisBusy(conn) == 1 {
                        try await waitForSocket(.readable, deadline: deadline, soft: soft, cancelled: cancelDeadline != nil, heard: &heard)
                        guard PQconsumeInput(conn) == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                        heard = .now
                        continue
                    }
                    guard let result = PQgetResult(conn) else { break }
                    defer { PQclear(result) }
                    switch PQresultStatus(result) {
                    case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
                        if !failed {
                            let rows = self.rows(of: result)
                            sets?.append(rows)
                            outcome = .success((rows, SQLExecution(rowsAffected: Self.affected(result), lastInsertID: nil)))
                        }
                    case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                        if !failed {
                            outcome = .success(
                                (
                                    SQLRows(columns: SQLColumns([]), rows: []),
                                    SQLExecution(rowsAffected: Self.affected(result), lastInsertID: nil)
                                ))
                        }
                    default:
                        if !failed {
                            outcome = .failure(PostgresErrors.error(from: result))
                            failed = true
                        }
                    }
                }
                return .success(())
            } catch {
                return .failure(error)
            }
        } onCancel: {
            if cancellable { self.requestCancel() }
        }
        try finished.get()
        if PQstatus(conn) == CONNECTION_BAD { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
        return try outcome.get()
    }

    /// Waits until the socket is ready in `direction`, by `deadline`. When the server has said
    /// nothing since `heard` for ``PostgresConfiguration/livenessCheckAfter``, a new connection
    /// asks whether it still answers (``ServerLiveness``): if it does, the statement is only slow
    /// and the wait goes on; if not, the server stopped answering (SIGSTOP, a wedged host) and the
    /// statement fails connection-class, instead of waiting for as long as the server stays stopped.
    /// Reaching `soft` (the task's deadline) only returns, so that the caller can cancel the statement.
    func waitForSocket(
        _ direction: SocketReactor.Direction, deadline hard: ContinuousClock.Instant?, soft: ContinuousClock.Instant? = nil,
        cancelled: Bool, heard: inout ContinuousClock.Instant
    ) async throws(SQLError) {
        let softFirst = soft.map { soft in hard.map { soft < $0 } ?? true } ?? false
        let deadline = softFirst ? soft : hard
        while true {
            let check = configuration.livenessCheckAfter.map { heard + $0 }
            let checkFirst = check.map { check in deadline.map { check < $0 } ?? true } ?? false
            do {
                try await SocketReactor.shared.wait(
                    for: PQsocket(conn), direction, until: checkFirst ? check : deadline, cancellable: false)
                return
            } catch {
                if softFirst, !checkFirst { return }
                if checkFirst, let interval = configuration.livenessCheckAfter {
                    if await ServerLiveness.answers(peerOf: PQsocket(conn), hello: Self.sslRequest) {
                        heard = .now
                        continue
                    }
                    session.markBroken()
                    throw SQLError(
                        .timeout, kind: .connection,
                        message:
                            "the server stopped answering: nothing for \(formatted(interval)), and no answer to a new connection within \(formatted(ServerLiveness.checkTimeout))",
                        backend: "postgres")
                }
                session.markBroken()
                throw cancelled
                    ? SQLError(
                        .cancelled, kind: .connection, message: "cancelled; the server did not confirm the cancel within 5 s",
                        backend: "postgres")
                    : SQLError(.timeout, message: "no answer from the server within the query timeout", backend: "postgres")
            }
        }
    }

    /// An `SSLRequest`: the postmaster answers it with one byte before anything else, so it tells
    /// whether the server answers without logging in (the probe then closes).
    static let sslRequest: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]

    /// Never: no error proves a cancel request spent. The postmaster signals the backend and
    /// its process group, so one request can interrupt twice (seen here: a statement and the
    /// next both ended "canceling statement due to user request" after a single `PQcancel`).
    /// A connection a cancel request went out on is given up (as pgx does).
    static func isCancelConfirmation(_ error: SQLError) -> Bool { false }

    /// Asks the server to cancel the running statement; `PQcancel` blocks, so it
    /// runs on one of the process's few ``BlockingCallThreads``.
    func requestCancel() {
        let canceller = self.canceller
        guard canceller.pointer != nil, session.noteCancelRequested() else { return }
        // The closure keeps the cancel object alive: closing the connection never waits for a cancel in flight.
        BlockingCallThreads.shared.submit {
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(canceller.pointer, &buffer, Int32(buffer.count))
        }
    }

    /// The row count of a command's tag (`INSERT 0 1` → 1), read without making a String.
    static func affected(_ result: OpaquePointer) -> Int {
        guard var digit = PQcmdTuples(result) else { return 0 }
        var count = 0
        while digit.pointee >= 0x30, digit.pointee <= 0x39 {
            count = count &* 10 &+ Int(digit.pointee - 0x30)
            digit += 1
        }
        return count
    }

    private func rows(of result: OpaquePointer) -> SQLRows {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let (columns, types) = columns(of: result, count: columnCount)
        var rows = SQLRowsBuilder(columns: columns, reservingRows: rowCount)
        for r in 0..<Int32(rowCount) {
            for c in 0..<Int32(columnCount) {
                if PQgetisnull(result, r, c) == 1 {
                    rows.append(.null)
                } else {
                    let length = Int(PQgetlength(result, r, c))
                    let bytes = UnsafeRawPointer(PQgetvalue(result, r, c)!).assumingMemoryBound(to: UInt8.self)
                    rows.append(PostgresValues.decode(UnsafeBufferPointer(start: bytes, count: length), oid: types[Int(c)]))
                }
            }
        }
        return rows.build()
    }

    /// The result's columns and their type OIDs: the last result's, when the names and types are the same.
    private func columns(of result: OpaquePointer, count: Int) -> (SQLColumns, [Oid]) {
        if let (columns, types) = lastColumns, columns.count == count,
            (0..<count).allSatisfy({ c in
                PQftype(result, Int32(c)) == types[c] && Self.equal(PQfname(result, Int32(c)), columns.names[c])
            })
        {
            return (columns, types)
        }
        let columns = SQLColumns((0..<count).map { String(cString: PQfname(result, Int32($0))) })
        let types = (0..<count).map { PQftype(result, Int32($0)) }
        lastColumns = (columns, types)
        return (columns, types)
    }

    /// Whether the C string `cName` spells `name`, compared byte by byte.
    private static func equal(_ cName: UnsafePointer<CChar>?, _ name: String) -> Bool {
        guard var byte = cName else { return false }
        for expected in name.utf8 {
            guard UInt8(bitPattern: byte.pointee) == expected else { return false }
            byte += 1
        }
        return byte.pointee == 0
    }
}

extension SQLError {
    /// The error with any password of `configuration`'s DSN removed from its message.
    func redacted(_ configuration: PostgresConfiguration) -> SQLError { redacting(password: configuration.password) }
}

/// libpq's cancel object (independent of the connection, safe to use from any
/// thread), freed when the connection and every cancel in flight are done with it.
final class CancelHandle: @unchecked Sendable {
    let pointer: OpaquePointer?

    init(pointer: OpaquePointer?) { self.pointer = pointer }

    deinit { if let pointer { PQfreeCancel(pointer) } }
}

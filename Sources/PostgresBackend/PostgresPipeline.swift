import CLibPQ
import SQLCore
import SocketReactor

extension PostgresConnection {
    /// How many rows of a batch are sent ahead of the results read back: enough
    /// to keep the server busy, few enough that neither side's socket buffer fills
    /// (each row's answer is some 30 bytes), so sending never waits on reading.
    static let pipelineWindow = 1024
    /// Rows sent between two flush requests (the server holds its answers until one).
    static let pipelineFlushEvery = 128
    /// Parameter bytes in flight at most, so that large rows do not pile up in libpq's buffer.
    static let pipelineWindowBytes = 1 << 20

    /// Runs `sql` once per row of `batch`, all or nothing (`SQLBatchFrame`),
    /// through libpq's pipeline mode: prepared once, the rows sent without
    /// waiting for each answer, one sync at the end. The first failing row is
    /// thrown with its `SQLError.batchRow`; the server skips the rows after it.
    public func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution] {
        guard !batch.isEmpty else { return [] }
        if let row = batch.firstIndex(where: { $0.count > Self.maxParameters }) {
            throw SQLError(
                .tooManyParameters, message: "\(batch[row].count) parameters; PostgreSQL's protocol carries at most \(Self.maxParameters)",
                backend: "postgres"
            ).at(batchRow: row)
        }
        return try await exclusive(cancellable: true) { () async throws(SQLError) -> [SQLExecution] in
            let frame = SQLBatchFrame(inTransaction: PQtransactionStatus(self.conn) != PQTRANS_IDLE)
            return try await frame.around { text async throws(SQLError) in
                try self.send(text, [], prepared: nil)
                _ = try await self.receive(cancellable: false)
            } _: { () async throws(SQLError) -> [SQLExecution] in
                let prepared = try await self.preparedName(for: sql, force: true)!
                let outcome = await withTaskCancellationHandler {
                    await self.pipeline(prepared, batch)
                } onCancel: {
                    self.requestCancel()
                }
                return try outcome.get()
            }
        }
    }

    /// The rows' reports, or the first failing row's error (or a connection-class
    /// error, after which the connection is out of step and given up).
    private func pipeline(_ prepared: PreparedName, _ batch: [[SQLValue]]) async -> Result<[SQLExecution], SQLError> {
        guard PQenterPipelineMode(conn) == 1 else { return .failure(PostgresErrors.connectionError(conn, whileConnecting: false)) }
        let expected = prepared.parameterCount
        let name = prepared.name
        var reports: [SQLExecution] = []
        reports.reserveCapacity(batch.count)
        var sent = 0
        var synced = false
        var answering = 0  // the row whose results are being read
        var answered = false  // that row has had a result
        var failure: SQLError?
        var sizes: [Int] = []  // each sent row's parameter bytes, for the byte window
        var bytesInFlight = 0
        var cancelDeadline: ContinuousClock.Instant?
        // The query timeout counts from the last answer: a long batch that keeps answering never times out.
        var queryDeadline = configuration.queryTimeout.map { ContinuousClock.now + $0 }
        let taskDeadline = SQLDeadline.current  // when it passes, the batch is cancelled as for a cancelled task
        var heard = ContinuousClock.now  // the last sign of life from the server

        /// Keeps the failure of the lowest row: a row sent earlier may fail on the server
        /// after a later one failed here, before it was sent.
        func record(_ error: SQLError) {
            guard let kept = failure else {
                failure = error
                return
            }
            if let row = error.batchRow, let keptRow = kept.batchRow, row < keptRow { failure = error }
        }

        func sync() throws(SQLError) {
            guard PQpipelineSync(conn) == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
            synced = true
        }
        do throws(SQLError) {
            while true {
                if Task.isCancelled, cancelDeadline == nil {
                    cancelDeadline = .now + .seconds(5)
                    failure = SQLError(.cancelled, message: "cancelled during a batch", backend: "postgres")
                }
                if let taskDeadline, cancelDeadline == nil, taskDeadline <= .now {
                    requestCancel()
                    cancelDeadline = .now + .seconds(5)
                    failure = SQLError(.cancelled, message: "the deadline passed during a batch", backend: "postgres")
                }
                let deadline = cancelDeadline.map { cancel in queryDeadline.map { min($0, cancel) } ?? cancel } ?? queryDeadline
                let soft = cancelDeadline == nil ? taskDeadline : nil
                // Send ahead, up to the window; stop sending at the first failure.
                while !synced, failure == nil, sent < batch.count, sent - answering < Self.pipelineWindow,
                    bytesInFlight < Self.pipelineWindowBytes
                {
                    let row = batch[sent]
                    guard row.count == expected else {
                        record(
                            SQLError(
                                .parameterCountMismatch,
                                message: "the statement has \(expected) placeholders but \(row.count) values were given",
                                backend: "postgres"
                            ).at(batchRow: sent))
                        break
                    }
                    do throws(SQLError) {
                        try bound.bind(row)
                    } catch {
                        record(error.at(batchRow: sent))
                        break
                    }
                    let queued: Int32 = bound.withPointers { _, values, lengths, formats in
                        PQsendQueryPrepared(conn, name, Int32(row.count), values, lengths, formats, 0)
                    }
                    guard queued == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                    sent += 1
                    sizes.append(bound.byteCount)
                    bytesInFlight += bound.byteCount
                    if sent == batch.count {
                        try sync()
                    } else if sent % Self.pipelineFlushEvery == 0, PQsendFlushRequest(conn) != 1 {
                        throw PostgresErrors.connectionError(conn, whileConnecting: false)
                    }
                }
                if failure != nil, !synced { try sync() }

                let flushed = PQflush(conn)
                if flushed < 0 { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                if flushed == 1 {
                    // Keep reading while the writes wait: the server may be waiting for us to read.
                    try await waitForSocket(
                        .readableOrWritable, deadline: deadline, soft: soft, cancelled: cancelDeadline != nil, heard: &heard)
                    guard PQconsumeInput(conn) == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                    heard = .now
                    continue
                }
                if PQisBusy(conn) == 1 {
                    try await waitForSocket(.readable, deadline: deadline, soft: soft, cancelled: cancelDeadline != nil, heard: &heard)
                    guard PQconsumeInput(conn) == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                    heard = .now
                    continue
                }
                guard let result = PQgetResult(conn) else {
                    if answered {
                        // The end of one row's results.
                        bytesInFlight -= sizes[answering]
                        answering += 1
                        answered = false
                        if let timeout = configuration.queryTimeout { queryDeadline = .now + timeout }
                        continue
                    }
                    // Every row sent is answered and more may be sent: send them.
                    if answering >= sent, !synced, failure == nil { continue }
                    // The answers (or the sync) are still on their way.
                    try await waitForSocket(.readable, deadline: deadline, soft: soft, cancelled: cancelDeadline != nil, heard: &heard)
                    guard PQconsumeInput(conn) == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                    heard = .now
                    continue
                }
                defer { PQclear(result) }
                switch PQresultStatus(result) {
                case PGRES_PIPELINE_SYNC:
                    guard PQexitPipelineMode(conn) == 1 else { throw PostgresErrors.connectionError(conn, whileConnecting: false) }
                    return failure.map { .failure($0) } ?? .success(reports)
                case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
                    reports.append(SQLExecution(rowsAffected: Self.affected(result), lastInsertID: nil))
                    answered = true
                case PGRES_PIPELINE_ABORTED:
                    answered = true
                default:
                    record(PostgresErrors.error(from: result).at(batchRow: answering))
                    answered = true
                }
            }
        } catch {
            // The connection is out of step with the server: give it up.
            return .failure(
                error.isConnectionError ? error : SQLError(.connectionLost, kind: .connection, message: error.message, backend: "postgres"))
        }
    }
}

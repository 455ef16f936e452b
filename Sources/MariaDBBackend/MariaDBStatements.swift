import CMariaDB
import Foundation
import Logging
import SQLCore
import SocketReactor

/// A `MYSQL_STMT` prepared on the server, how many `?` it has, and the
/// result layout of its last execution (column names and result buffers,
/// reused while the columns keep their types and fit their buffers).
final class PreparedHandle {
    let statement: UnsafeMutablePointer<MYSQL_STMT>
    let parameterCount: Int
    private var columns: SQLColumns?
    private var resultBinds: BindSet?

    /// The columns and bound result buffers for the result just stored. A `later` result set of a
    /// `CALL` gets its own, which are not kept: the cache holds the first result's layout.
    func resultLayout(later: Bool = false) throws(SQLError) -> (SQLColumns, BindSet) {
        let fields = UnsafeBufferPointer(start: statement.pointee.fields, count: Int(mysql_stmt_field_count(statement)))
        if later {
            let binds = BindSet.results(fields)
            guard mysql_stmt_bind_result(statement, binds.binds) == 0 else { throw MariaDBErrors.error(statement) }
            return (SQLColumns(fields.map { String(cString: $0.name) }), binds)
        }
        if let columns, let resultBinds, columns.count == fields.count, resultBinds.fits(fields) {
            guard mysql_stmt_bind_result(statement, resultBinds.binds) == 0 else { throw MariaDBErrors.error(statement) }
            return (columns, resultBinds)
        }
        let columns = SQLColumns(fields.map { String(cString: $0.name) })
        let binds = BindSet.results(fields)
        guard mysql_stmt_bind_result(statement, binds.binds) == 0 else { throw MariaDBErrors.error(statement) }
        self.columns = columns
        self.resultBinds = binds
        return (columns, binds)
    }

    init(statement: UnsafeMutablePointer<MYSQL_STMT>) {
        self.statement = statement
        self.parameterCount = Int(mysql_stmt_param_count(statement))
    }

    /// Frees the handle after its connection is closed (no I/O then: closing
    /// the connection detached it).
    func release() { mysql_stmt_close(statement) }
}

extension MariaDBConnection {
    /// Runs one statement: parameterless SQL as a plain query (scripts allowed),
    /// anything with parameters (or `alwaysPrepared`) as a prepared statement.
    /// `script`: an `execute` without parameters, where several statements are allowed on purpose
    /// (the server takes them for that call only, unless ``MariaDBConfiguration/multiStatements``).
    func run(
        _ sql: String, _ parameters: [SQLValue], cancellable: Bool = true, alwaysPrepared: Bool = false, script: Bool = false,
        collecting sets: SQLResultSets? = nil
    ) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution) {
        try await exclusive(cancelGrace: cancellable ? Self.cancelGrace : nil) { (budget: inout CallBudget) async throws(SQLError) in
            if parameters.isEmpty, !alwaysPrepared {
                guard script, !self.configuration.multiStatements, Self.mayHoldSeveralStatements(sql) else {
                    return try await self.runText(sql, budget: &budget, collecting: sets)
                }
                return try await self.runScript(sql, budget: &budget, collecting: sets)
            }
            let (handle, cached) = try await self.preparedHandle(for: sql, budget: &budget, force: alwaysPrepared)
            guard cached else {
                // Past the cache's capacity: prepare, run, close.
                let outcome: Result<(rows: SQLRows, execution: SQLExecution), SQLError>
                do throws(SQLError) {
                    outcome = .success(try await self.runPrepared(handle, parameters, budget: &budget, collecting: sets))
                } catch {
                    outcome = .failure(error)
                }
                var closed: my_bool = 0
                try? await self.call(&budget) {
                    mysql_stmt_close_start(&closed, handle.statement)
                } resume: {
                    mysql_stmt_close_cont(&closed, handle.statement, $0)
                }
                return try outcome.get()
            }
            return try await self.runPrepared(handle, parameters, budget: &budget, collecting: sets)
        }
    }

    /// The cached prepared statement for `sql`, preparing it on first use.
    /// Past the cache's capacity the handle is not cached (`false`) unless `force`d.
    func preparedHandle(for sql: String, budget: inout CallBudget, force: Bool) async throws(SQLError) -> (PreparedHandle, Bool) {
        if let cached = statements[sql] { return (cached, true) }
        try SQLError.refuseNUL(in: sql, backend: "mariadb")
        guard let statement = mysql_stmt_init(mysql) else { throw MariaDBErrors.error(mysql, connecting: false) }
        var updateMaxLength: my_bool = 1
        mysql_stmt_attr_set(statement, STMT_ATTR_UPDATE_MAX_LENGTH, &updateMaxLength)
        let text = CText(sql)
        defer { text.free() }
        var result: Int32 = 0
        do {
            try await call(&budget) {
                mysql_stmt_prepare_start(&result, statement, text.pointer, UInt(text.length))
            } resume: {
                mysql_stmt_prepare_cont(&result, statement, $0)
            }
        } catch {
            mysql_stmt_close(statement)
            throw error
        }
        guard result == 0 else {
            let error = MariaDBErrors.error(statement)
            mysql_stmt_close(statement)
            throw error
        }
        let handle = PreparedHandle(statement: statement)
        let cache = force || statements.count < Self.preparedCacheCapacity
        if cache { statements[sql] = handle }
        return (handle, cache)
    }

    /// Binds, executes, stores and decodes a prepared statement's result.
    func runPrepared(
        _ handle: PreparedHandle, _ parameters: [SQLValue], budget: inout CallBudget, collecting sets: SQLResultSets? = nil
    ) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution) {
        guard parameters.count == handle.parameterCount else {
            throw SQLError(
                .parameterCountMismatch,
                message: "the statement has \(handle.parameterCount) placeholders but \(parameters.count) values were given",
                backend: "mariadb")
        }
        let statement = handle.statement
        let binds = try BindSet.parameters(parameters)
        if !parameters.isEmpty, mysql_stmt_bind_param(statement, binds.binds) != 0 { throw MariaDBErrors.error(statement) }
        var result: Int32 = 0
        try await call(&budget) {
            mysql_stmt_execute_start(&result, statement)
        } resume: {
            mysql_stmt_execute_cont(&result, statement, $0)
        }
        withExtendedLifetime(binds) {}  // the parameter buffers are read until the call ends
        guard result == 0 else { throw MariaDBErrors.error(statement) }
        var rows = SQLRows(columns: SQLColumns([]), rows: [])
        if mysql_stmt_field_count(statement) > 0 {
            try await storeResult(statement, budget: &budget)
            rows = try Self.fetchAll(handle)
            sets?.append(rows)
        }
        let execution = SQLExecution(
            rowsAffected: Self.count(mysql_stmt_affected_rows(statement)), lastInsertID: Self.insertID(mysql_stmt_insert_id(statement)))
        // A CALL leaves more results (at least its status); drain them so the connection stays in step.
        while mysql_stmt_more_results(statement) != 0 {
            try await call(&budget) {
                mysql_stmt_next_result_start(&result, statement)
            } resume: {
                mysql_stmt_next_result_cont(&result, statement, $0)
            }
            if result > 0 { throw MariaDBErrors.error(statement) }
            if result < 0 { break }
            if mysql_stmt_field_count(statement) > 0 {
                try await storeResult(statement, budget: &budget)
                if let sets {
                    // Each result set of a CALL has columns of its own.
                    sets.append(try Self.fetchAll(handle, later: true))
                } else {
                    mysql_stmt_free_result(statement)
                }
            }
        }
        return (rows, execution)
    }

    private func storeResult(_ statement: UnsafeMutablePointer<MYSQL_STMT>, budget: inout CallBudget) async throws(SQLError) {
        var result: Int32 = 0
        try await call(&budget) {
            mysql_stmt_store_result_start(&result, statement)
        } resume: {
            mysql_stmt_store_result_cont(&result, statement, $0)
        }
        if result != 0 { throw MariaDBErrors.error(statement) }
    }

    /// Decodes every stored row (no I/O: the result is already in memory).
    private static func fetchAll(_ handle: PreparedHandle, later: Bool = false) throws(SQLError) -> SQLRows {
        let statement = handle.statement
        defer { mysql_stmt_free_result(statement) }
        let (columns, binds) = try handle.resultLayout(later: later)
        var rows = SQLRowsBuilder(columns: columns, reservingRows: Int(clamping: mysql_stmt_num_rows(statement)))
        while true {
            let fetched = mysql_stmt_fetch(statement)
            if fetched == MYSQL_NO_DATA { break }
            if fetched == 1 { throw MariaDBErrors.error(statement) }
            binds.readRow(into: &rows)
        }
        return rows.build()
    }

    /// Whether `sql` has a `;` before its end (spaces and `;` at the end do not count): it may
    /// hold several statements. A `;` in a string literal counts too; the script path then
    /// only costs two round trips more.
    static func mayHoldSeveralStatements(_ sql: String) -> Bool {
        var body = Substring(sql)
        while let last = body.last, last.isWhitespace || last == ";" { body.removeLast() }
        return body.contains(";")
    }

    /// A script run on purpose: several statements are allowed for this call alone
    /// (`mysql_set_server_option`), then refused again; a connection that cannot be set back
    /// is given up.
    private func runScript(
        _ sql: String, budget: inout CallBudget, collecting sets: SQLResultSets? = nil
    ) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution) {
        try await setMultiStatements(true, budget: &budget)
        let outcome: Result<(rows: SQLRows, execution: SQLExecution), SQLError>
        do throws(SQLError) {
            outcome = .success(try await runText(sql, budget: &budget, collecting: sets))
        } catch {
            outcome = .failure(error)
        }
        do throws(SQLError) {
            try await setMultiStatements(false, budget: &budget)
        } catch {
            session.markBroken()
        }
        return try outcome.get()
    }

    private func setMultiStatements(_ on: Bool, budget: inout CallBudget) async throws(SQLError) {
        var result: Int32 = 0
        let option = on ? MYSQL_OPTION_MULTI_STATEMENTS_ON : MYSQL_OPTION_MULTI_STATEMENTS_OFF
        try await call(&budget) {
            mysql_set_server_option_start(&result, mysql, option)
        } resume: {
            mysql_set_server_option_cont(&result, mysql, $0)
        }
        if result != 0 { throw MariaDBErrors.error(mysql, connecting: false) }
    }

    /// A plain query: every result of a multi-statement script is read; the last one answers.
    func runText(
        _ sql: String, budget: inout CallBudget, collecting sets: SQLResultSets? = nil
    ) async throws(SQLError) -> (rows: SQLRows, execution: SQLExecution) {
        try SQLError.refuseNUL(in: sql, backend: "mariadb")
        let text = CText(sql)
        defer { text.free() }
        var status: Int32 = 0
        try await call(&budget) {
            mysql_real_query_start(&status, mysql, text.pointer, UInt(text.length))
        } resume: {
            mysql_real_query_cont(&status, mysql, $0)
        }
        guard status == 0 else { throw MariaDBErrors.error(mysql, connecting: false) }
        var rows = SQLRows(columns: SQLColumns([]), rows: [])
        var execution = SQLExecution(rowsAffected: 0, lastInsertID: nil)
        while true {
            if mysql_field_count(mysql) > 0 {
                var stored: UnsafeMutablePointer<MYSQL_RES>?
                try await call(&budget) {
                    mysql_store_result_start(&stored, mysql)
                } resume: {
                    mysql_store_result_cont(&stored, mysql, $0)
                }
                guard let stored else { throw MariaDBErrors.error(mysql, connecting: false) }
                rows = Self.rows(of: stored)
                mysql_free_result(stored)
                sets?.append(rows)
                execution = SQLExecution(rowsAffected: rows.count, lastInsertID: nil)
            } else {
                rows = SQLRows(columns: SQLColumns([]), rows: [])
                execution = SQLExecution(
                    rowsAffected: Self.count(mysql_affected_rows(mysql)), lastInsertID: Self.insertID(mysql_insert_id(mysql)))
            }
            guard mysql_more_results(mysql) != 0 else { break }
            try await call(&budget) {
                mysql_next_result_start(&status, mysql)
            } resume: {
                mysql_next_result_cont(&status, mysql, $0)
            }
            if status > 0 { throw MariaDBErrors.error(mysql, connecting: false) }
            if status < 0 { break }
        }
        return (rows, execution)
    }

    private static func rows(of result: UnsafeMutablePointer<MYSQL_RES>) -> SQLRows {
        let fields = UnsafeBufferPointer(start: mysql_fetch_fields(result), count: Int(mysql_num_fields(result)))
        let columns = SQLColumns(fields.map { String(cString: $0.name) })
        let kinds = fields.map(ColumnKind.init)
        var rows = SQLRowsBuilder(columns: columns, reservingRows: Int(clamping: mysql_num_rows(result)))
        while let row = mysql_fetch_row(result), let lengths = mysql_fetch_lengths(result) {
            for index in kinds.indices {
                guard let cell = row[index] else {
                    rows.append(.null)
                    continue
                }
                let bytes = UnsafeRawPointer(cell).assumingMemoryBound(to: UInt8.self)
                rows.append(kinds[index].value(text: UnsafeBufferPointer(start: bytes, count: Int(lengths[index]))))
            }
        }
        return rows.build()
    }

    private static func count(_ value: UInt64) -> Int { value == UInt64.max ? 0 : Int(clamping: value) }
    private static func insertID(_ value: UInt64) -> Int64? { value == 0 ? nil : Int64(clamping: value) }

    /// Asks the server to stop this session's running statement (`KILL QUERY`)
    /// over a second, short-lived connection; blocking calls, so on one of the
    /// process's few ``BlockingCallThreads``.
    func requestKill() {
        let configuration = self.configuration
        let id = serverThreadID
        let logger = self.logger
        BlockingCallThreads.shared.submit {
            guard let killer = mysql_init(nil) else { return }
            defer { mysql_close(killer) }
            var seconds: UInt32 = 5
            mysql_options(killer, MYSQL_OPT_CONNECT_TIMEOUT, &seconds)
            mysql_options(killer, MYSQL_OPT_READ_TIMEOUT, &seconds)
            mysql_options(killer, MYSQL_OPT_WRITE_TIMEOUT, &seconds)
            MariaDBLibrary.applyOptions(configuration, to: killer)
            let c = configuration
            guard
                mysql_real_connect(
                    killer, c.unixSocket == nil ? c.host : nil, c.user, c.password, c.database,
                    UInt32(c.port), c.unixSocket, 0) != nil,
                mysql_query(killer, "KILL QUERY \(id)") == 0
            else {
                logger.debug(
                    "KILL QUERY failed", metadata: ["error": "\(MariaDBErrors.error(killer, connecting: false).redacted(configuration))"])
                return
            }
        }
    }
}

/// The statements that make a batch (``SQLConnection/execute(_:batch:)``) all
/// or nothing, the same in every backend: a transaction of its own when none is
/// open, else a savepoint inside the caller's transaction, which a failed batch
/// leaves as it was before the batch.
package struct SQLBatchFrame: Sendable, Hashable {
    /// Run before the first row.
    package let open: String
    /// Run after the last row succeeded.
    package let close: String
    /// Run, in order, after a row failed.
    package let undo: [String]

    /// The savepoint's name; unlikely to meet one of the caller's.
    package static let savepoint = "clustersql_batch"

    /// The frame for a connection that is (`inTransaction`) or is not inside a
    /// transaction; `begin` is the backend's own way to start one (SQLite's `BEGIN IMMEDIATE`).
    package init(inTransaction: Bool, begin: String = "BEGIN") {
        if inTransaction {
            open = "SAVEPOINT \(Self.savepoint)"
            close = "RELEASE SAVEPOINT \(Self.savepoint)"
            undo = ["ROLLBACK TO SAVEPOINT \(Self.savepoint)", "RELEASE SAVEPOINT \(Self.savepoint)"]
        } else {
            open = begin
            close = "COMMIT"
            undo = ["ROLLBACK"]
        }
    }

    /// Runs `body` inside the frame, with `statement` running the frame's own
    /// statements: committed (released) when it returns, undone when it throws.
    /// The undo statements' own failures are not reported: `body`'s error is.
    package func around<T>(statement: (String) throws(SQLError) -> Void, _ body: () throws(SQLError) -> T) throws(SQLError) -> T {
        try statement(open)
        do throws(SQLError) {
            let result = try body()
            try statement(close)
            return result
        } catch {
            for undoing in undo { try? statement(undoing) }
            throw error
        }
    }

    /// ``around(statement:_:)`` for backends whose statements are `async`.
    package func around<T>(
        statement: (String) async throws(SQLError) -> Void, _ body: () async throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        try await statement(open)
        do throws(SQLError) {
            let result = try await body()
            try await statement(close)
            return result
        } catch {
            for undoing in undo { try? await statement(undoing) }
            throw error
        }
    }

    /// Runs every row of `rows` through `run` inside the frame; a failing row is
    /// thrown with its ``SQLError/batchRow``, and nothing of the batch remains.
    /// (Not generic: per row, it costs no runtime type lookups.)
    package func run(
        _ rows: [[SQLValue]], statement: (String) throws(SQLError) -> Void, row run: ([SQLValue]) throws(SQLError) -> SQLExecution
    ) throws(SQLError) -> [SQLExecution] {
        try around(statement: statement) { () throws(SQLError) -> [SQLExecution] in
            var reports: [SQLExecution] = []
            reports.reserveCapacity(rows.count)
            for index in rows.indices {
                do throws(SQLError) { reports.append(try run(rows[index])) } catch { throw error.at(batchRow: index) }
            }
            return reports
        }
    }

    /// ``run(_:statement:row:)`` for backends whose statements are `async`; `prepare`
    /// runs inside the frame before the first row (a failed prepare must not abort the
    /// caller's transaction, as PostgreSQL's would outside a savepoint).
    package func run(
        _ rows: [[SQLValue]], statement: (String) async throws(SQLError) -> Void,
        prepare: () async throws(SQLError) -> Void, row run: ([SQLValue]) async throws(SQLError) -> SQLExecution
    ) async throws(SQLError) -> [SQLExecution] {
        try await around(statement: statement) { () async throws(SQLError) -> [SQLExecution] in
            try await prepare()
            var reports: [SQLExecution] = []
            reports.reserveCapacity(rows.count)
            for index in rows.indices {
                do throws(SQLError) { reports.append(try await run(rows[index])) } catch { throw error.at(batchRow: index) }
            }
            return reports
        }
    }
}

import SQLCore

/// The statements of a ``SQLiteConnection``, run synchronously on its own
/// thread inside ``SQLiteConnection/onThread(_:)`` and
/// ``SQLiteConnection/transaction(_:)``: many statements for one hop, as
/// GRDB's `write { db in }` does. It cannot leave the closure (it is not
/// copyable), so it is never used off the connection's thread.
public struct SQLiteStatements: ~Copyable {
    let handle: SQLiteHandle

    /// Runs a statement and returns all its rows.
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws(SQLError) -> SQLRows {
        try handle.checkInterrupted()
        return try handle.run(sql, parameters, collect: true).0
    }

    /// Runs a statement (or, without parameters, a script) and reports what it changed.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [SQLValue] = []) throws(SQLError) -> SQLExecution {
        try handle.checkInterrupted()
        return parameters.isEmpty ? try handle.runScript(sql).0 : try handle.run(sql, parameters, collect: false).1
    }

    /// Runs `sql` once per row of `batch`, all or nothing (`SQLConnection.execute(_:batch:)`).
    @discardableResult
    public func execute(_ sql: String, batch: [[SQLValue]]) throws(SQLError) -> [SQLExecution] {
        guard !batch.isEmpty else { return [] }
        return try handle.runBatch(sql, batch)
    }

    /// Whether a transaction is open.
    public var isInTransaction: Bool { handle.isInTransaction }
}

extension SQLiteConnection {
    /// Runs `body` on the connection's own thread, in one hop however many
    /// statements it runs. `body` must do nothing but SQLite work: any wait in
    /// it holds the connection and its thread (never the cooperative pool).
    /// Cancelling the calling task interrupts the running statement.
    public func onThread<T: Sendable>(
        _ body: @escaping @Sendable (borrowing SQLiteStatements) throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        try await perform { handle throws(SQLError) in try body(SQLiteStatements(handle: handle)) }
    }

    /// ``onThread(_:)`` all or nothing: in a transaction of its own (`BEGIN`
    /// with the configured ``SQLiteConfiguration/transactionMode``), or in a
    /// savepoint inside the caller's; committed when `body` returns, undone when it throws.
    public func transaction<T: Sendable>(
        _ body: @escaping @Sendable (borrowing SQLiteStatements) throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        try await perform { handle throws(SQLError) in
            try SQLBatchFrame(inTransaction: handle.isInTransaction, begin: handle.beginStatement).around { text throws(SQLError) in
                _ = try handle.runScript(text)
            } _: { () throws(SQLError) -> T in
                try body(SQLiteStatements(handle: handle))
            }
        }
    }
}

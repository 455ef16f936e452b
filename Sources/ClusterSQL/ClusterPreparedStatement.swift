import ConnectionKit
import SQLCore

/// A statement prepared through a ``ClusterConnection``: it is prepared on
/// whichever node the connection is on when it runs, and prepared again after
/// the connection moved to another node.
struct ClusterPreparedStatement: SQLPreparedStatement {
    private struct Prepared: Sendable {
        let connection: any SQLConnection
        let statement: any SQLPreparedStatement
    }

    let connection: ClusterConnection
    let sql: String
    private let prepared = Locked<Prepared?>(nil)
    private let closed = Locked(false)

    init(connection: ClusterConnection, sql: String) {
        self.connection = connection
        self.sql = sql
    }

    func query(_ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await connection.perform(
            idempotent: connection.isRetryableRead(sql), effect: StatementKind.isPlainRead(sql) ? .read : .write
        ) { inner throws(SQLError) in
            try await statement(on: inner).query(parameters)
        }
    }

    func execute(_ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await connection.perform(idempotent: false, effect: .write) { inner throws(SQLError) in
            try await statement(on: inner).execute(parameters)
        }
    }

    func close() async {
        closed.withLock { $0 = true }
        let old = prepared.withLock { value -> Prepared? in
            defer { value = nil }
            return value
        }
        await old?.statement.close()
    }

    private func statement(on inner: any SQLConnection) async throws(SQLError) -> any SQLPreparedStatement {
        if closed.withLock({ $0 }) { throw SQLError(.misuse, message: "the prepared statement is closed") }
        if let current = prepared.withLock({ $0 }), current.connection === inner { return current.statement }
        let statement = try await inner.prepare(sql)
        let replaced = prepared.withLock { value -> Prepared? in
            defer { value = Prepared(connection: inner, statement: statement) }
            return value
        }
        if let replaced, replaced.connection.isValid { await replaced.statement.close() }
        return statement
    }
}

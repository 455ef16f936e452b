import ConnectionKit
import Foundation

/// A connection whose statements each run in a client span (OpenTelemetry's database
/// conventions: `db.system.name`, `db.namespace`, `db.operation.name` (the statement's first
/// keyword), `server.address`, `server.port`, and `error.type` on failure). The SQL text and the
/// parameter values are never recorded. A driver hands one out from `connect(to:)` only when its
/// tracing is on, so an untraced connection is the backend's own, with nothing in between.
package final class TracedConnection: SQLConnection {
    private let inner: any SQLConnection
    private let spans: ClientSpans

    /// `connection` traced with `spans`, or `connection` itself when `spans` is `nil` (tracing off).
    package static func wrap(_ connection: any SQLConnection, spans: ClientSpans?) -> any SQLConnection {
        guard let spans else { return connection }
        return TracedConnection(inner: connection, spans: spans)
    }

    private init(inner: any SQLConnection, spans: ClientSpans) {
        self.inner = inner
        self.spans = spans
    }

    /// The first keyword of `sql` past comments (`--` and `/* */`), upper-cased (`SELECT`,
    /// `INSERT`, `WITH`...): the span's operation. Never more of the text.
    package static func operation(of sql: String) -> String {
        var keyword = ""
        var rest = Substring(sql)
        while let first = rest.first {
            if rest.hasPrefix("--") {
                rest = rest.drop { $0 != "\n" }
            } else if rest.hasPrefix("/*") {
                guard let end = rest.dropFirst(2).range(of: "*/") else { break }
                rest = rest[end.upperBound...]
            } else if first.isLetter {
                keyword = String(rest.prefix { $0.isLetter }.prefix(16))
                break
            } else if first.isWhitespace || first == "(" {
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        return keyword.isEmpty ? "QUERY" : keyword.uppercased()
    }

    func traced<T>(_ operation: String, _ body: () async throws(SQLError) -> T) async throws(SQLError) -> T {
        try await spans.span(operation, errorType: { $0.code.description }, body)
    }

    package func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await traced(Self.operation(of: sql)) { () async throws(SQLError) in try await inner.query(sql, parameters) }
    }

    package func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        try await traced(Self.operation(of: sql)) { () async throws(SQLError) in try await inner.queryAll(sql, parameters) }
    }

    package func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await traced(Self.operation(of: sql)) { () async throws(SQLError) in try await inner.execute(sql, parameters) }
    }

    package func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution] {
        try await traced(Self.operation(of: sql)) { () async throws(SQLError) in try await inner.execute(sql, batch: batch) }
    }

    package func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement {
        let statement = try await traced("PREPARE") { () async throws(SQLError) in try await inner.prepare(sql) }
        return TracedStatement(inner: statement, connection: self, operation: Self.operation(of: sql))
    }

    package func begin(_ options: SQLTransactionOptions) async throws(SQLError) {
        try await traced("BEGIN") { () async throws(SQLError) in try await inner.begin(options) }
    }
    package func commit() async throws(SQLError) { try await traced("COMMIT") { () async throws(SQLError) in try await inner.commit() } }
    package func rollback() async throws(SQLError) {
        try await traced("ROLLBACK") { () async throws(SQLError) in try await inner.rollback() }
    }
    package func ping() async throws(SQLError) { try await traced("PING") { () async throws(SQLError) in try await inner.ping() } }

    package var isValid: Bool { inner.isValid }
    package var transactionStatus: SQLTransactionStatus { inner.transactionStatus }
    package func close() async { await inner.close() }
}

/// A prepared statement of a ``TracedConnection``: each run is a span of the statement's operation.
struct TracedStatement: SQLPreparedStatement {
    let inner: any SQLPreparedStatement
    let connection: TracedConnection
    let operation: String

    var sql: String { inner.sql }

    func query(_ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await connection.traced(operation) { () async throws(SQLError) in try await inner.query(parameters) }
    }

    func execute(_ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await connection.traced(operation) { () async throws(SQLError) in try await inner.execute(parameters) }
    }

    func close() async { await inner.close() }
}

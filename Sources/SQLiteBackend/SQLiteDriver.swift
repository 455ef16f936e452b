import ConnectionKit
import Logging
import SQLCore

/// The SQLite backend of `SQLDriver`: opens ``SQLiteConnection``s from DSNs
/// (see ``SQLiteConfiguration`` for the forms it accepts).
public struct SQLiteDriver: SQLDriver {
    /// `sqlite`.
    public var name: String { "sqlite" }
    private let logger: Logger
    private let tracing: TracingConfiguration

    /// Creates the driver; connections log through `logger` (debug level only), and with
    /// `tracing` on, the connections `connect(to:)` opens run each statement in a span.
    public init(logger: Logger = Logger(label: "clustersql.sqlite"), tracing: TracingConfiguration = TracingConfiguration()) {
        self.logger = logger
        self.tracing = tracing
    }

    /// Parses `dsn` and opens a connection. With the driver's tracing on, the connection is a traced
    /// wrapper (its spans' `db.namespace` is the file's name) rather than a ``SQLiteConnection``
    /// (``connect(_:)`` gives that, untraced).
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        let configuration = try SQLiteConfiguration(dsn: dsn)
        let connection = try await SQLiteConnection.open(configuration, logger: logger)
        let path = configuration.filename.prefix { $0 != "?" }
        let file = path.split(separator: "/").last.map(String.init)
        return TracedConnection.wrap(connection, spans: ClientSpans(tracing, system: "sqlite", address: nil, port: nil, namespace: file))
    }

    /// Opens a connection from a configuration.
    public func connect(_ configuration: SQLiteConfiguration) async throws(SQLError) -> SQLiteConnection {
        try await SQLiteConnection.open(configuration, logger: logger)
    }
}

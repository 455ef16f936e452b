import Logging
import SQLCore

/// The SQLite backend of `SQLDriver`: opens ``SQLiteConnection``s from DSNs
/// (see ``SQLiteConfiguration`` for the forms it accepts).
public struct SQLiteDriver: SQLDriver {
    /// `sqlite`.
    public var name: String { "sqlite" }
    private let logger: Logger

    /// Creates the driver; connections log through `logger` (debug level only).
    public init(logger: Logger = Logger(label: "clustersql.sqlite")) {
        self.logger = logger
    }

    /// Parses `dsn` and opens a connection.
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        try await SQLiteConnection.open(SQLiteConfiguration(dsn: dsn), logger: logger)
    }

    /// Opens a connection from a configuration.
    public func connect(_ configuration: SQLiteConfiguration) async throws(SQLError) -> SQLiteConnection {
        try await SQLiteConnection.open(configuration, logger: logger)
    }
}

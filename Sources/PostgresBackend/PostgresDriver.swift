import Logging
import SQLCore
import SocketReadiness

/// The PostgreSQL backend of `SQLDriver` (libpq, non-blocking).
public struct PostgresDriver: SQLDriver {
    /// `postgres`.
    public var name: String { "postgres" }
    /// The `SocketReactor` all its connections wait on.
    public var taskExecutor: (any TaskExecutor)? { SocketReactor.shared }
    private let logger: Logger
    private let connectTimeout: Duration
    private let queryTimeout: Duration?

    /// Creates the driver with the deadlines every connection gets.
    public init(
        connectTimeout: Duration = .seconds(10), queryTimeout: Duration? = nil,
        logger: Logger = Logger(label: "clustersql.postgres")
    ) {
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.logger = logger
    }

    /// Parses `dsn` with libpq and connects.
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        try await connect(PostgresConfiguration(dsn: dsn, connectTimeout: connectTimeout, queryTimeout: queryTimeout))
    }

    /// Connects with a configuration; logs the outcome at debug level (the DSN with its password hidden).
    public func connect(_ configuration: PostgresConfiguration) async throws(SQLError) -> PostgresConnection {
        let dsn = Logger.MetadataValue.string(DSNRedaction.redact(configuration.dsn))
        do {
            let connection = try await PostgresConnection.connect(configuration, logger: logger)
            logger.debug("postgres connected", metadata: ["dsn": dsn])
            return connection
        } catch {
            logger.debug("postgres connect failed", metadata: ["dsn": dsn, "error": "\(error)"])
            throw error
        }
    }
}

import ConnectionKit
import Logging
import SQLCore
import SocketReactor

/// The PostgreSQL backend of `SQLDriver` (libpq, non-blocking).
public struct PostgresDriver: SQLDriver {
    /// `postgres`.
    public var name: String { "postgres" }
    /// The `SocketReactor` all its connections wait on.
    public var taskExecutor: (any TaskExecutor)? { SocketReactor.shared }
    private let logger: Logger
    private let connectTimeout: Duration
    private let queryTimeout: Duration?
    private let livenessCheckAfter: Duration?
    private let tracing: TracingConfiguration

    /// Creates the driver with the deadlines every connection gets
    /// (``PostgresConfiguration/livenessCheckAfter`` says what the liveness check does); with
    /// `tracing` on, the connections `connect(to:)` opens run each statement in a span.
    public init(
        connectTimeout: Duration = .seconds(10), queryTimeout: Duration? = nil, livenessCheckAfter: Duration? = .seconds(10),
        logger: Logger = Logger(label: "clustersql.postgres"), tracing: TracingConfiguration = TracingConfiguration()
    ) {
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.livenessCheckAfter = livenessCheckAfter
        self.logger = logger
        self.tracing = tracing
    }

    /// Parses `dsn` with libpq and connects. With the driver's tracing on, the connection is a
    /// traced wrapper rather than a ``PostgresConnection`` (``connect(_:)`` gives that, untraced).
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        let connection = try await connect(
            PostgresConfiguration(
                dsn: dsn, connectTimeout: connectTimeout, queryTimeout: queryTimeout, livenessCheckAfter: livenessCheckAfter))
        return TracedConnection.wrap(connection, spans: tracing.isEnabled ? connection.spans(tracing) : nil)
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

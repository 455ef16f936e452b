import ConnectionKit
import Logging
import SQLCore
import SocketReactor

/// The MariaDB / MySQL backend of `SQLDriver` (Connector/C, non-blocking).
public struct MariaDBDriver: SQLDriver {
    /// `mariadb`.
    public var name: String { "mariadb" }
    /// The `SocketReactor` all its connections wait on.
    public var taskExecutor: (any TaskExecutor)? { SocketReactor.shared }
    private let logger: Logger
    private let connectTimeout: Duration
    private let queryTimeout: Duration?
    private let livenessCheckAfter: Duration?
    private let tracing: TracingConfiguration

    /// Creates the driver with the deadlines every connection gets (a DSN's `timeout`,
    /// `readTimeout` and `livenessCheck` parameters override them; see
    /// ``MariaDBConfiguration/livenessCheckAfter``); with `tracing` on, the connections
    /// `connect(to:)` opens run each statement in a span.
    public init(
        connectTimeout: Duration = .seconds(10), queryTimeout: Duration? = nil, livenessCheckAfter: Duration? = .seconds(10),
        logger: Logger = Logger(label: "clustersql.mariadb"), tracing: TracingConfiguration = TracingConfiguration()
    ) {
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.livenessCheckAfter = livenessCheckAfter
        self.logger = logger
        self.tracing = tracing
    }

    /// Parses `dsn` (`mysql://…` or `user:pass@tcp(host:port)/db`) and connects. With the driver's
    /// tracing on, the connection is a traced wrapper rather than a ``MariaDBConnection``
    /// (``connect(_:)`` gives that, untraced).
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        let configuration = try MariaDBConfiguration(
            dsn: dsn, connectTimeout: connectTimeout, queryTimeout: queryTimeout, livenessCheckAfter: livenessCheckAfter)
        let connection = try await connect(configuration)
        let spans = ClientSpans(
            tracing, system: "mariadb", address: configuration.unixSocket ?? configuration.host,
            port: configuration.unixSocket == nil ? configuration.port : nil, namespace: configuration.database)
        return TracedConnection.wrap(connection, spans: spans)
    }

    /// Connects with a configuration; logs the outcome at debug level (never the password).
    public func connect(_ configuration: MariaDBConfiguration) async throws(SQLError) -> MariaDBConnection {
        let target: Logger.Metadata = ["address": "\(configuration.address)", "user": "\(configuration.user)"]
        do {
            let connection = try await MariaDBConnection.connect(configuration, logger: logger)
            logger.debug("mariadb connected", metadata: target.merging(["thread": "\(connection.serverThreadID)"]) { $1 })
            return connection
        } catch {
            logger.debug("mariadb connect failed", metadata: target.merging(["error": "\(error)"]) { $1 })
            throw error
        }
    }
}

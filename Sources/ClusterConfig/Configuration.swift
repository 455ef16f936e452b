import ClusterSQL
import Logging
import SQLCore

/// The whole `config.toml`: named clusters of SQL nodes.
///
/// ```toml
/// default_cluster = "local"       # optional; otherwise the only or first cluster
/// data_dir = ".clustersql-data"   # optional; relative to this file
///
/// [clusters.local]
/// driver = "sqlite"               # sqlite, postgres or mariadb
/// strategy = "latency"            # optional: latency (default), race or round-robin
/// target = "any"                  # optional: any (default), read-write, read-only, primary, standby, prefer-standby
/// connection_lifetime = 60        # optional: seconds a pooled connection lives (default 60, 0: forever)
/// max_replication_lag_ms = 2000   # optional: a node further behind takes no opens (default: no limit)
/// max_transactions_behind = 10    # optional: the same for Galera's apply queue (default: no limit)
/// tls = true                      # optional (postgres, mariadb; on a node too): verified TLS in each DSN,
///                                 # tls_verify = "none" | "certificate", tls_ca_file (see `SQLTLS`)
///
/// [[clusters.local.nodes]]
/// name = "local-1"
/// dsn = "local-1.sqlite"          # for sqlite, relative paths live under data_dir
/// ```
public struct ClusterSQLConfiguration: Sendable {
    /// The file it was read from.
    public var file: String
    /// The cluster used when none is named.
    public var defaultCluster: String
    /// The folder that holds SQLite nodes' files, as an absolute path.
    public var dataDirectory: String
    /// The clusters, in the order of their names.
    public var clusters: [ClusterConfiguration]
    /// The Redis services (`[services.NAME]`), in the order of their names.
    public var services: [ServiceConfiguration]

    /// Creates a configuration.
    init(
        file: String, defaultCluster: String, dataDirectory: String, clusters: [ClusterConfiguration], services: [ServiceConfiguration] = []
    ) {
        self.file = file
        self.defaultCluster = defaultCluster
        self.dataDirectory = dataDirectory
        self.clusters = clusters
        self.services = services
    }

    /// The cluster named `name`, or the default cluster when `name` is `nil`.
    ///
    /// - Throws: ``ConfigurationError`` with reason `unknownCluster`, listing the names there are.
    public func cluster(named name: String?) throws(ConfigurationError) -> ClusterConfiguration {
        let wanted = name ?? defaultCluster
        guard let cluster = clusters.first(where: { $0.name == wanted }) else {
            let known = clusters.map(\.name).joined(separator: ", ")
            throw ConfigurationError(
                .unknownCluster, file: file, message: "no cluster named \(wanted) (clusters: \(known))")
        }
        return cluster
    }
}

/// One cluster: a driver and its nodes.
public struct ClusterConfiguration: Sendable, Equatable {
    /// The cluster's name (the key under `[clusters]`).
    public var name: String
    /// The registered driver name: `sqlite`, `postgres` or `mariadb`.
    public var driver: String
    /// The nodes, in file order.
    public var nodes: [NodeConfiguration]
    /// How opens pick a node.
    public var strategy: BalancingStrategy
    /// The kind of node an open asks for by default.
    public var target: TargetRole
    /// How long a pooled connection lives before the pool opens a new one (and
    /// so rebalances); `nil`: as long as it works.
    public var connectionLifetime: Duration?
    /// How far behind a node may be and still be chosen (`max_replication_lag_ms`, `max_transactions_behind`).
    public var replicationLimits: ReplicationLimits
    /// Statements run on every connection to any of its nodes before its first use (`session_sql`).
    public var sessionSQL: [String]
    /// The pool settings of a `Database` over the cluster: its name, and `min_idle`, `max_open`
    /// and `leak_threshold_ms` when the file sets them (the rest `DatabaseConfiguration`'s defaults).
    public var databaseConfiguration: DatabaseConfiguration

    /// Creates a cluster.
    init(
        name: String, driver: String, nodes: [NodeConfiguration], strategy: BalancingStrategy = .latency,
        target: TargetRole = .any, connectionLifetime: Duration? = .seconds(60), replicationLimits: ReplicationLimits = .unlimited,
        sessionSQL: [String] = [], databaseConfiguration: DatabaseConfiguration? = nil
    ) {
        self.sessionSQL = sessionSQL
        self.databaseConfiguration = databaseConfiguration ?? DatabaseConfiguration(name: name)
        self.name = name
        self.driver = driver
        self.nodes = nodes
        self.strategy = strategy
        self.target = target
        self.connectionLifetime = connectionLifetime
        self.replicationLimits = replicationLimits
    }

    /// The cluster's driver settings: its name, strategy, target, connection lifetime and replication limits, the rest defaults.
    public var driverConfiguration: ClusterDriverConfiguration {
        var configuration = ClusterDriverConfiguration(name: name)
        configuration.strategy = strategy
        configuration.target = target
        configuration.connectionLifetime = connectionLifetime
        configuration.replicationLimits = replicationLimits
        return configuration
    }

    /// A `ClusterDriver` over the nodes, each opened with the driver `registry` has under ``driver``.
    ///
    /// `configure` adjusts the driver settings first; `wrapping` may put each
    /// node's driver behind another (a fault injector in the demo). The cluster's
    /// and each node's ``sessionSQL`` run on every connection the node opens for users.
    ///
    /// - Throws: `SQLError` with `SQLError.Code.invalidConfiguration` when the registry lacks the driver.
    public func makeClusterDriver(
        registry: SQLDriverRegistry, logger: Logger,
        configure: (inout ClusterDriverConfiguration) -> Void = { _ in },
        wrapping: (NodeConfiguration, any SQLDriver) -> any SQLDriver = { $1 }
    ) throws(SQLError) -> ClusterDriver {
        var settings = driverConfiguration
        configure(&settings)
        let cluster = ClusterDriver(configuration: settings, logger: logger)
        let nodeDriver = try registry.driver(named: driver)
        for node in nodes {
            let statements = sessionSQL + node.sessionSQL
            let wrapped = wrapping(node, nodeDriver)
            try cluster.addNode(
                name: node.name, driver: statements.isEmpty ? wrapped : wrapped.onConnect(SQLSessionSetup(statements)), dsn: node.dsn,
                roleDetector: RoleDetector(for: nodeDriver),
                replicationProbe: ReplicationProbe(for: nodeDriver))
        }
        return cluster
    }
}

/// One node of a cluster.
public struct NodeConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// The node's name, unique within its cluster.
    public var name: String
    /// The DSN handed to the driver (SQLite paths already resolved against the data folder).
    public var dsn: String
    /// Statements run on every connection to the node before its first use, after the
    /// cluster's (`session_sql`).
    public var sessionSQL: [String]

    /// Creates a node.
    public init(name: String, dsn: String, sessionSQL: [String] = []) {
        self.name = name
        self.dsn = dsn
        self.sessionSQL = sessionSQL
    }

    /// The node's name and its DSN with any password replaced by `***`.
    public var description: String { "\(name) (\(DSNRedaction.redact(dsn)))" }
}

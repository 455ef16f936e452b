import SQLCore

/// The whole `config.toml`: named clusters of SQL nodes.
///
/// ```toml
/// default_cluster = "local"       # optional; otherwise the only or first cluster
/// data_dir = ".clustersql-data"   # optional; relative to this file
///
/// [clusters.local]
/// driver = "sqlite"               # sqlite, postgres or mariadb
///
/// [[clusters.local.nodes]]
/// name = "local-1"
/// dsn = "local-1.sqlite"          # for sqlite, relative paths live under data_dir
/// ```
public struct ClusterSQLConfiguration: Sendable, Equatable {
    /// The file it was read from.
    public var file: String
    /// The cluster used when none is named.
    public var defaultCluster: String
    /// The folder that holds SQLite nodes' files, as an absolute path.
    public var dataDirectory: String
    /// The clusters, in the order of their names.
    public var clusters: [ClusterConfiguration]

    /// Creates a configuration.
    public init(file: String, defaultCluster: String, dataDirectory: String, clusters: [ClusterConfiguration]) {
        self.file = file
        self.defaultCluster = defaultCluster
        self.dataDirectory = dataDirectory
        self.clusters = clusters
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

    /// Creates a cluster.
    public init(name: String, driver: String, nodes: [NodeConfiguration]) {
        self.name = name
        self.driver = driver
        self.nodes = nodes
    }
}

/// One node of a cluster.
public struct NodeConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// The node's name, unique within its cluster.
    public var name: String
    /// The DSN handed to the driver (SQLite paths already resolved against the data folder).
    public var dsn: String

    /// Creates a node.
    public init(name: String, dsn: String) {
        self.name = name
        self.dsn = dsn
    }

    /// The node's name and its DSN with any password replaced by `***`.
    public var description: String { "\(name) (\(DSNRedaction.redact(dsn)))" }
}


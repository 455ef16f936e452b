import ClusterConfig
import Foundation
import TestServers
import Testing

/// Where the integration tests that do not harm their servers find them: the
/// servers TestServers starts, or, when `CLUSTERSQL_CONFIG` names a
/// config.toml, the nodes of its `galera` and `postgres` clusters (as
/// clustersql's DBCONFIG did), so the suite can be pointed at a real
/// deployment. Tests that kill or stop servers run only on TestServers'.
enum Deployment {
    /// The config.toml `CLUSTERSQL_CONFIG` names, if any.
    static let configPath: String? = ProcessInfo.processInfo.environment[ConfigurationLoader.environmentVariable]
        .flatMap { $0.isEmpty ? nil : $0 }

    /// Whether the tests run against a deployment of the user's.
    static var isExternal: Bool { configPath != nil }

    /// The condition for tests that kill, stop or restart servers.
    static let ownServersOnly = ConditionTrait.enabled(
        if: configPath == nil, "kills or stops servers: runs only on the servers TestServers starts, not with CLUSTERSQL_CONFIG")

    /// A node to add to a cluster.
    struct Node: Sendable {
        let name: String
        let dsn: String
    }

    /// The three Galera nodes: the config's `galera` cluster, or TestServers' shared cluster.
    static func galera() async throws -> [Node] {
        if let nodes = try configured("galera") { return nodes }
        return try await GaleraCluster.shared().nodes.enumerated().map {
            Node(name: "node-\($0.offset + 1)", dsn: $0.element.dsn + "?timeout=2s")
        }
    }

    /// A PostgreSQL primary and standby: the config's `postgres` cluster, or TestServers' shared pair.
    static func postgres() async throws -> [Node] {
        if let nodes = try configured("postgres") { return nodes }
        let servers = try await PostgresCluster.shared()
        return [
            Node(name: "a-primary", dsn: servers.primary.dsn + " connect_timeout=2"),
            Node(name: "b-standby", dsn: servers.standbys[0].dsn + " connect_timeout=2"),
        ]
    }

    private static func configured(_ cluster: String) throws -> [Node]? {
        guard let configPath else { return nil }
        let configuration = try ConfigurationLoader.load(path: configPath)
        return try configuration.cluster(named: cluster).nodes.map { Node(name: $0.name, dsn: $0.dsn) }
    }
}

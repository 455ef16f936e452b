import Memcached
import Redis

/// One `[services.NAME]` table: a Redis deployment reached through Sentinel, or a plain Redis server.
///
/// ```toml
/// [services.cache]
/// kind = "sentinel"
/// sentinels = ["127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"]
/// master_name = "mymaster"
/// sentinel_password = "..."     # optional: the sentinels' own requirepass
/// password = "..."              # optional: the data nodes' (username = "..." for an ACL user)
///
/// [services.session]
/// kind = "redis"
/// url = "redis://127.0.0.1:6379/0"
///
/// [services.pages]
/// kind = "memcached"
/// servers = ["127.0.0.1:11211", "127.0.0.1:11212"]
/// weights = [1, 2]              # optional: ketama weights, one per server
/// timeout_ms = 500              # optional: connect, read and write timeouts
/// failure_threshold = 10        # optional: failures within failure_window (s) that take a server down
/// failure_window = 10
/// redistribute = false          # optional: a down server's keys go to the next server meanwhile
/// flush_on_heal = true          # optional: a server that comes back is emptied before it serves
/// ```
///
/// Any kind speaks TLS with `tls = true` (a `redis` service also with a `rediss://` URL), checking
/// the server's certificate against the system's roots; the other keys, each optional, set it
/// (relative paths are taken from the config file's folder):
///
/// ```toml
/// tls = true
/// tls_ca_file = "certs/ca.crt"        # the roots the servers' certificates must chain to
/// tls_cert_file = "certs/client.crt"  # a client certificate, with its unencrypted key
/// tls_key_file = "certs/client.key"
/// tls_verify = "full"                 # full (chain and name), certificate (chain only) or none
/// tls_server_name = "redis.internal"  # the name to check instead of each server's host
/// ```
///
/// A Sentinel service uses the same settings for the sentinels and the data nodes.
public struct ServiceConfiguration: Sendable, CustomStringConvertible {
    /// What kind of service, with its settings.
    public enum Kind: Sendable {
        /// Masters and replicas found through sentinels.
        case sentinel(SentinelConfiguration)
        /// One Redis server.
        case redis(RedisConfiguration)
        /// memcached servers, with consistent hashing and per-server healing.
        case memcached(MemcachedClientConfiguration, HealingConfiguration)
    }

    /// The kinds a service may name.
    static let kinds = ["sentinel", "redis", "memcached"]

    /// The service's name (the key under `[services]`).
    public var name: String
    /// Its kind and settings.
    public var kind: Kind

    /// Creates a service.
    init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// `cache (sentinel: ...)`, never a password.
    public var description: String {
        switch kind {
        case .sentinel(let configuration): "\(name) (sentinel: \(configuration))"
        case .redis(let configuration): "\(name) (redis: \(configuration))"
        case .memcached(let configuration, _):
            "\(name) (memcached: \(configuration.servers.map(\.description).joined(separator: ", "))\(configuration.servers.first?.tls.map { " over \($0)" } ?? ""))"
        }
    }
}

extension ClusterSQLConfiguration {
    /// The service named `name`.
    ///
    /// - Throws: ``ConfigurationError`` with reason `unknownService`, listing the names there are.
    public func service(named name: String) throws(ConfigurationError) -> ServiceConfiguration {
        guard let service = services.first(where: { $0.name == name }) else {
            let known = services.isEmpty ? "none" : services.map(\.name).joined(separator: ", ")
            throw ConfigurationError(.unknownService, file: file, message: "no service named \(name) (services: \(known))")
        }
        return service
    }
}

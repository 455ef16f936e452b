import Foundation
import Memcached
import NIOClientSupport
import Redis

/// Reads one `[services.NAME]` table, strictly, like the clusters.
enum ServiceReader {
    /// The service; relative TLS file paths are taken from `baseDirectory` (the config file's folder).
    static func service(
        named name: String, _ reader: inout TableReader, baseDirectory: String
    ) throws(ConfigurationError) -> ServiceConfiguration {
        let kind = try reader.string("kind")!
        let service: ServiceConfiguration
        switch kind {
        case "sentinel":
            service = ServiceConfiguration(name: name, kind: .sentinel(try sentinel(&reader, baseDirectory: baseDirectory)))
        case "redis":
            let url = try reader.string("url")!
            guard var configuration = try? RedisConfiguration(url: url) else {
                throw reader.error(
                    .invalidValue, key: "url", "is not a valid URL (redis[s]://[[user]:password@]host[:port][/database])")
            }
            configuration.tls = try tls(&reader, default: configuration.tls, baseDirectory: baseDirectory)
            service = ServiceConfiguration(name: name, kind: .redis(configuration))
        case "memcached":
            let (client, healing) = try memcached(&reader, baseDirectory: baseDirectory)
            service = ServiceConfiguration(name: name, kind: .memcached(client, healing))
        default:
            throw reader.error(.invalidValue, key: "kind", "must be one of \(ServiceConfiguration.kinds.joined(separator: ", "))")
        }
        try reader.finish()
        return service
    }

    private static func memcached(
        _ reader: inout TableReader, baseDirectory: String
    ) throws(ConfigurationError) -> (MemcachedClientConfiguration, HealingConfiguration) {
        let addresses = try reader.strings("servers")!
        guard !addresses.isEmpty else { throw reader.error(.invalidValue, key: "servers", "lists no server") }
        let weights = try reader.integers("weights", required: false) ?? Array(repeating: 1, count: addresses.count)
        guard weights.count == addresses.count else { throw reader.error(.invalidValue, key: "weights", "must give one weight per server") }
        guard weights.allSatisfy({ $0 >= 1 }) else { throw reader.error(.invalidValue, key: "weights", "must be 1 or more") }
        let timeout = try reader.integer("timeout_ms", required: false) ?? 500
        guard timeout >= 1 else { throw reader.error(.invalidValue, key: "timeout_ms", "must be 1 or more") }
        let tls = try tls(&reader, default: nil, baseDirectory: baseDirectory)
        var servers: [MemcachedServerConfiguration] = []
        for (index, address) in addresses.enumerated() {
            guard var server = try? MemcachedServerConfiguration(address: address, weight: weights[index]) else {
                throw reader.error(.invalidValue, key: "servers[\(index)]", "must be host[:port]")
            }
            server.connectTimeout = .milliseconds(timeout)
            server.readTimeout = .milliseconds(timeout)
            server.writeTimeout = .milliseconds(timeout)
            server.tls = tls
            servers.append(server)
        }
        var healing = HealingConfiguration()
        if let threshold = try reader.integer("failure_threshold", required: false) {
            guard threshold >= 1 else { throw reader.error(.invalidValue, key: "failure_threshold", "must be 1 or more") }
            healing.failureThreshold = threshold
        }
        if let window = try reader.integer("failure_window", required: false) {
            guard window >= 1 else { throw reader.error(.invalidValue, key: "failure_window", "must be 1 or more seconds") }
            healing.failureWindow = .seconds(window)
        }
        healing.redistributeWhileDown = try reader.bool("redistribute", required: false) ?? false
        healing.flushOnHeal = try reader.bool("flush_on_heal", required: false) ?? true
        var client = MemcachedClientConfiguration(servers: servers)
        if let shared = try reader.integer("shared_connections", required: false) {
            guard shared >= 0 else {
                throw reader.error(.invalidValue, key: "shared_connections", "must be 0 (a pooled connection per call) or more")
            }
            client.sharedConnectionsPerServer = shared == 0 ? nil : shared
        }
        return (client, healing)
    }

    private static func sentinel(_ reader: inout TableReader, baseDirectory: String) throws(ConfigurationError) -> SentinelConfiguration {
        let sentinels = try reader.strings("sentinels")!
        guard !sentinels.isEmpty else { throw reader.error(.invalidValue, key: "sentinels", "lists no sentinel") }
        for (index, address) in sentinels.enumerated() where (try? SentinelAddress(parsing: address)) == nil {
            throw reader.error(.invalidValue, key: "sentinels[\(index)]", "must be host:port")
        }
        let masterName = try reader.string("master_name")!
        guard !masterName.isEmpty else { throw reader.error(.invalidValue, key: "master_name", "must not be empty") }
        var configuration = SentinelConfiguration(sentinels: sentinels, masterNames: [masterName])
        configuration.sentinelUsername = try reader.string("sentinel_username", required: false)
        configuration.sentinelPassword = try reader.string("sentinel_password", required: false)
        configuration.dataNodes.username = try reader.string("username", required: false)
        configuration.dataNodes.password = try reader.string("password", required: false)
        if let database = try reader.integer("database", required: false) {
            guard database >= 0 else { throw reader.error(.invalidValue, key: "database", "must be 0 or more") }
            configuration.dataNodes.database = database
        }
        if let size = try reader.integer("pool_size", required: false) {
            guard size >= 1 else { throw reader.error(.invalidValue, key: "pool_size", "must be 1 or more") }
            configuration.poolSize = size
        }
        configuration.replicaFallback = try reader.choice("replica_fallback", default: ReplicaFallback.master)
        // One TLS setting for the sentinels and the data nodes: a deployment that encrypts one encrypts both.
        configuration.sentinelTLS = try tls(&reader, default: nil, baseDirectory: baseDirectory)
        configuration.dataNodes.tls = configuration.sentinelTLS
        if configuration.sentinelUsername != nil && configuration.sentinelPassword == nil {
            throw reader.error(.missingKey, key: "sentinel_password", "is required with sentinel_username")
        }
        if configuration.dataNodes.username != nil && configuration.dataNodes.password == nil {
            throw reader.error(.missingKey, key: "password", "is required with username")
        }
        return configuration
    }

    /// The service's TLS keys: `tls = true` (or any `tls_*` key) turns it on; `tls_ca_file`,
    /// `tls_cert_file` with `tls_key_file`, `tls_verify` (full, certificate, none) and
    /// `tls_server_name` set it. The files (relative ones from `baseDirectory`) must be readable now.
    /// `fallback`: what applies without the keys (a `rediss://` URL's TLS).
    private static func tls(
        _ reader: inout TableReader, default fallback: ClientTLS?, baseDirectory: String
    ) throws(ConfigurationError) -> ClientTLS? {
        let enabled = try reader.bool("tls", required: false)
        var files: [String: String] = [:]
        for key in ["tls_ca_file", "tls_cert_file", "tls_key_file"] {
            guard let given = try reader.string(key, required: false) else { continue }
            let path = ConfigurationLoader.absolute(given, base: baseDirectory)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw reader.error(.invalidValue, key: key, "names a file that cannot be read")
            }
            files[key] = path
        }
        let serverName = try reader.string("tls_server_name", required: false)
        if let serverName, let problem = ClientTLS.serverNameProblem(serverName) {
            throw reader.error(.invalidValue, key: "tls_server_name", problem)
        }
        let verifyGiven = reader.has("tls_verify")
        let verification = try reader.choice("tls_verify", default: ClientTLS.Verification.full)
        let detailed = !files.isEmpty || serverName != nil || verifyGiven
        if enabled == false {
            if detailed { throw reader.error(.invalidValue, key: "tls", "is false, yet other tls_ keys are set") }
            // A rediss:// URL asks for TLS: turning it off quietly would send the password in the clear.
            if fallback != nil { throw reader.error(.invalidValue, key: "tls", "is false, yet the URL is rediss://") }
            return nil
        }
        guard enabled == true || detailed else { return fallback }
        // Roots and a name are what verification checks: with none they would be ignored without a word.
        let checked = files["tls_ca_file"] != nil ? "tls_ca_file" : (serverName != nil ? "tls_server_name" : nil)
        if verification == .none, let checked {
            throw reader.error(.invalidValue, key: "tls_verify", "is none, so \(checked) would be ignored")
        }
        if (files["tls_cert_file"] == nil) != (files["tls_key_file"] == nil) {
            let missing = files["tls_cert_file"] == nil ? "tls_cert_file" : "tls_key_file"
            throw reader.error(
                .missingKey, key: missing, "is required with \(missing == "tls_cert_file" ? "tls_key_file" : "tls_cert_file")")
        }
        return ClientTLS(
            verification: verification, trustRootsFile: files["tls_ca_file"], certificateFile: files["tls_cert_file"],
            privateKeyFile: files["tls_key_file"], serverName: serverName)
    }
}

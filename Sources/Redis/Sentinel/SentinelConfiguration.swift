import NIOClientSupport

/// How a ``SentinelClient`` finds and follows its masters.
///
/// `description` never shows a password.
public struct SentinelConfiguration: Sendable, CustomStringConvertible {
    /// The sentinels to ask, `host:port` each (`host` alone: port 26379) (more are learnt from `SENTINEL sentinels`).
    public var sentinels: [String]
    /// The master names to serve (`sentinel monitor NAME ...` on the sentinels).
    public var masterNames: [String]
    /// The sentinels' ACL user; `nil`: password-only `AUTH` (or none).
    public var sentinelUsername: String?
    /// The sentinels' own password (their `requirepass`), apart from the data nodes'; `nil`: no `AUTH`.
    public var sentinelPassword: String?
    /// TLS for the connections to the sentinels (their `tls-port`); `nil`: plain TCP. The data
    /// nodes' TLS is ``dataNodes``' ``RedisConfiguration/tls``.
    public var sentinelTLS: ClientTLS?
    /// How to talk to the data nodes (master and replicas): credentials, database,
    /// client name, protocol, timeouts and TLS. Its host and port are ignored: the sentinels name them
    /// (so with TLS, the certificates must name the addresses the sentinels announce, or set the TLS server name).
    public var dataNodes: RedisConfiguration
    /// Idle connections kept per master (and per replica). Default 10.
    public var poolSize: Int
    /// The options of each master's and replica's ``RedisPool`` (their name gets the node's address appended).
    public var poolOptions: RedisPoolOptions
    /// The longest wait for one sentinel's answer, and for the `ROLE` check of a data node. Default 500 ms.
    /// It bounds connecting to a sentinel too, TLS handshake included (give TLS sentinels on a slow link more).
    public var sentinelTimeout: Duration
    /// How often every master is checked again (the sentinels asked, the master's
    /// `ROLE` verified) whatever the announcements say. Default 1 s.
    public var recheckInterval: Duration
    /// How long a lease waits for a verified master (at start, or after the
    /// master was found demoted) before it fails with ``RedisError/Code/failoverInProgress``. Default 5 s.
    public var masterWait: Duration
    /// How many sentinels the client subscribes to for `+switch-master` and the other events. Default 3.
    public var subscriptions: Int
    /// A command refused with `READONLY` (it was not executed: the node is no longer
    /// master) is sent once more to the new master once one is verified within ``masterWait``. Default on.
    public var retryReadOnly: Bool
    /// A command that never reached the master because connecting to it failed
    /// (refused, timed out: the master is down) waits for the next verified
    /// master, within ``masterWait``, and is sent there, instead of failing at
    /// once: an application's writes ride through a failover. Commands that
    /// were sent when the connection broke may have run, and fail. Default on.
    public var waitForFailover: Bool
    /// When set, every write through ``SentinelClient/master(_:)`` waits for replicas' acknowledgement (`WAIT`).
    public var durableWrites: DurableWrites?
    /// How replica reads pick a replica. Default ``ReplicaBalancing/latency``.
    public var replicaBalancing: ReplicaBalancing
    /// Where replica reads go when no replica serves. Default ``ReplicaFallback/master``.
    public var replicaFallback: ReplicaFallback

    /// A configuration for `sentinels` and `masterNames` with the defaults above.
    public init(sentinels: [String], masterNames: [String], dataNodes: RedisConfiguration = RedisConfiguration()) {
        self.sentinels = sentinels
        self.masterNames = masterNames
        self.sentinelUsername = nil
        self.sentinelPassword = nil
        self.sentinelTLS = nil
        self.dataNodes = dataNodes
        self.poolSize = 10
        self.poolOptions = RedisPoolOptions(name: "sentinel")
        self.sentinelTimeout = .milliseconds(500)
        self.recheckInterval = .seconds(1)
        self.masterWait = .seconds(5)
        self.subscriptions = 3
        self.retryReadOnly = true
        self.waitForFailover = true
        self.durableWrites = nil
        self.replicaFallback = .master
        self.replicaBalancing = .latency
    }

    /// The sentinels, the master names and the data nodes' user, never a password.
    public var description: String {
        let auth = sentinelPassword == nil ? "" : " (sentinel auth)"
        let tls = sentinelTLS.map { " over \($0)" } ?? ""
        return
            "sentinels \(sentinels.joined(separator: ","))\(tls) masters \(masterNames.joined(separator: ","))\(auth), data nodes \(dataNodes)"
    }

    /// The configuration for connections to the sentinel at `address`: the sentinels'
    /// credentials, the data nodes' protocol, and ``sentinelTimeout`` for every wait.
    func sentinelConnection(_ address: SentinelAddress) -> RedisConfiguration {
        var settings = RedisConfiguration(host: address.host, port: address.port)
        settings.username = sentinelUsername
        settings.password = sentinelPassword
        settings.connectTimeout = sentinelTimeout
        settings.readTimeout = sentinelTimeout
        settings.writeTimeout = sentinelTimeout
        settings.clientName = dataNodes.clientName
        settings.tls = sentinelTLS
        return settings
    }

    /// The configuration for connections to the data node at `address`.
    func dataNode(_ address: SentinelAddress) -> RedisConfiguration {
        var settings = dataNodes
        settings.host = address.host
        settings.port = address.port
        return settings
    }
}

/// `WAIT numreplicas timeout` after each write: the write is acknowledged only
/// once that many replicas have it, so it survives a failover.
public struct DurableWrites: Sendable, Hashable {
    /// How many replicas must acknowledge. Default 1.
    public var replicas: Int
    /// How long to wait for them. Default 1 s.
    public var timeout: Duration

    /// Creates the setting.
    public init(replicas: Int = 1, timeout: Duration = .seconds(1)) {
        self.replicas = max(1, replicas)
        self.timeout = timeout
    }
}

/// What replica reads do when no replica passes the checks.
public enum ReplicaFallback: String, Sendable, Hashable, CaseIterable {
    /// Read from the master instead.
    case master
    /// Fail with ``RedisError/Code/noReplicaAvailable``.
    case fail
}

/// A `host:port` pair named by a sentinel or given in the configuration.
public struct SentinelAddress: Sendable, Hashable, CustomStringConvertible, Comparable, Codable {
    /// The host name or IP address.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `host` (IPv6 in brackets); the port defaults to 26379, the sentinels' port.
    package init(parsing text: String) throws(RedisError) {
        guard !text.contains("@"), !text.contains("/") else {
            throw .invalidConfiguration("a sentinel address is host:port, without scheme, credentials or database")
        }
        let (host, port) = try RedisConfiguration.hostAndPort(Substring(text))
        self.init(host: host, port: port ?? 26379)
    }

    /// `host:port`, IPv6 in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Ordered by host, then port.
    public static func < (lhs: SentinelAddress, rhs: SentinelAddress) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }

    /// Decodes the `host:port` text that ``encode(to:)`` writes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a host:port address: \(error.message)")
        }
    }

    /// Encodes the address as its `host:port` text (``description``), as statistics show it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

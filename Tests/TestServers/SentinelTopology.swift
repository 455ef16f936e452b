import Foundation

/// A Redis master, its replicas and a set of sentinels watching them, all real
/// processes on 127.0.0.1 in temporary folders, on free ports.
///
/// ``start(masterName:replicas:sentinels:dataPassword:sentinelPassword:)`` returns
/// once every sentinel sees the master, the other sentinels and every replica.
/// Any process can be killed, paused, resumed or restarted through the server
/// objects; ``waitForFailover(from:timeout:)`` waits until the sentinels have
/// switched to a new master. Torn down by pid (``destroy()``).
public final class SentinelTopology: Sendable {
    /// The master name the sentinels monitor.
    public let masterName: String
    /// The data nodes: the first started as master, the rest as its replicas.
    public let servers: [RedisServer]
    /// The sentinels.
    public let sentinels: [RedisSentinelServer]
    /// The data nodes' password, if any.
    public let dataPassword: String?
    /// The sentinels' own password, if any.
    public let sentinelPassword: String?
    /// How every process speaks TLS, if they do.
    public var tls: ServerTLS? { servers.first?.tls }

    init(masterName: String, servers: [RedisServer], sentinels: [RedisSentinelServer], dataPassword: String?, sentinelPassword: String?) {
        self.masterName = masterName
        self.servers = servers
        self.sentinels = sentinels
        self.dataPassword = dataPassword
        self.sentinelPassword = sentinelPassword
    }

    /// Starts a master, `replicas` replicas and `sentinels` sentinels (quorum 2, or 1
    /// with a single sentinel; a dead master is noticed after 1 s); waits until all is seen.
    /// With `tls`, every process speaks only TLS, to clients and to one another.
    public static func start(
        masterName: String = "mymaster", replicas: Int = 1, sentinels sentinelCount: Int = 3,
        dataPassword: String? = nil, sentinelPassword: String? = nil, tls: ServerTLS? = nil
    ) async throws -> SentinelTopology {
        var servers: [RedisServer] = []
        var sentinels: [RedisSentinelServer] = []
        do {
            let master = try await RedisServer.start(name: "\(masterName)-node-0", password: dataPassword, tls: tls)
            servers.append(master)
            for index in 0..<replicas {
                servers.append(
                    try await RedisServer.start(
                        name: "\(masterName)-node-\(index + 1)", password: dataPassword, replicaOf: master.port, tls: tls))
            }
            for index in 0..<sentinelCount {
                sentinels.append(
                    try await RedisSentinelServer.start(
                        name: "\(masterName)-sentinel-\(index)", masterName: masterName, masterPort: master.port,
                        quorum: min(2, sentinelCount), dataPassword: dataPassword, password: sentinelPassword, tls: tls))
            }
            let topology = SentinelTopology(
                masterName: masterName, servers: servers, sentinels: sentinels, dataPassword: dataPassword,
                sentinelPassword: sentinelPassword)
            try await topology.waitUntilSeen()
            return topology
        } catch {
            for server in servers { server.destroy() }
            for sentinel in sentinels { sentinel.destroy() }
            throw error
        }
    }

    /// Waits until every replica replicates and every running sentinel reports
    /// the other sentinels and the replicas (sentinels find each other through
    /// the master's hello channel, every 2 s).
    public func waitUntilSeen(timeout: Duration = .seconds(30)) async throws {
        for replica in servers.dropFirst() { try await replica.waitUntilReplicating(timeout: timeout) }
        let deadline = ContinuousClock.now + timeout
        for sentinel in sentinels where sentinel.processID != nil {
            while true {
                let state = (try? await sentinel.masterState(of: masterName)) ?? [:]
                if state["num-other-sentinels"] == String(sentinels.count - 1) && state["num-slaves"] == String(servers.count - 1) { break }
                guard ContinuousClock.now < deadline else {
                    throw TestServerError(
                        "\(sentinel.name) does not see the whole topology within \(timeout): \(state)\n\(sentinel.logTail())")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The data node the sentinels name as master now (the first running sentinel that answers).
    public func currentMaster() async throws -> RedisServer {
        for sentinel in sentinels where sentinel.processID != nil {
            if let port = await sentinel.masterPort(of: masterName), let server = servers.first(where: { $0.port == port }) {
                return server
            }
        }
        throw TestServerError("no sentinel names a master for \(masterName)")
    }

    /// Waits until every running, unpaused sentinel names a master other than
    /// `old` (they publish `+switch-master` as they switch), and returns it.
    public func waitForFailover(from old: RedisServer, timeout: Duration = .seconds(30)) async throws -> RedisServer {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var named: Set<Int> = []
            var all = true
            for sentinel in sentinels where sentinel.processID != nil && !sentinel.process.isPaused {
                guard let port = await sentinel.masterPort(of: masterName), port != old.port else {
                    all = false
                    break
                }
                named.insert(port)
            }
            if all, named.count == 1, let server = servers.first(where: { named.contains($0.port) }) { return server }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestServerError("the sentinels did not fail over from \(old.name) within \(timeout)\n\(sentinels[0].logTail())")
    }

    /// Restarts `server` (killed earlier) as a replica of `master`, and waits until it replicates.
    public func restartAsReplica(_ server: RedisServer, of master: RedisServer) async throws {
        try await server.restart(replicaOf: master.port)
        try await server.waitUntilReplicating()
    }

    /// Waits until every running sentinel lists `server` as a replica that is not down.
    public func waitUntilReplicaSeen(_ server: RedisServer, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        for sentinel in sentinels where sentinel.processID != nil && !sentinel.process.isPaused {
            while true {
                let lines = ((try? await sentinel.cli("SENTINEL", "replicas", masterName)) ?? "").split(whereSeparator: \.isNewline).map(
                    String.init)
                // Each replica is a flat list of field, value lines; find ours and its flags.
                var flagsSeen: String?
                for index in lines.indices
                where lines[index] == "port" && index + 1 < lines.count && lines[index + 1] == String(server.port) {
                    let rest = lines[index...].prefix(40)
                    flagsSeen = rest.firstIndex(of: "flags").map { lines[$0 + 1] }
                }
                if let flagsSeen, !flagsSeen.contains("down"), !flagsSeen.contains("disconnected") { break }
                guard ContinuousClock.now < deadline else {
                    throw TestServerError(
                        "\(sentinel.name) does not list \(server.name) as a healthy replica within \(timeout) (its flags: \(flagsSeen ?? "not listed"))\n\(sentinel.logTail())\n\(server.name):\n\(server.logTail(lines: 15))"
                    )
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// `host:port` of every sentinel, in order.
    public var sentinelAddresses: [String] { sentinels.map(\.address) }

    /// Kills every process and removes the folders.
    public func destroy() {
        for sentinel in sentinels {
            sentinel.resume()
            sentinel.destroy()
        }
        for server in servers {
            server.resume()
            server.destroy()
        }
    }
}

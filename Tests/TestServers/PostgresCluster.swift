import Foundation
import TestSupport

/// A real PostgreSQL primary with streaming standbys, for the integration suites.
///
/// ``shared()`` starts one per test process on first use (suites that only
/// read and write use it); suites that kill or promote servers start their own
/// with ``start(standbys:)`` and ``destroy()`` it. Every server is killed by pid
/// when the process exits, also after a failure or an interrupt.
public final class PostgresCluster: Sendable {
    /// The read-write server.
    public let primary: PostgresServer
    /// Hot standbys streaming from the primary.
    public let standbys: [PostgresServer]

    init(primary: PostgresServer, standbys: [PostgresServer]) {
        self.primary = primary
        self.standbys = standbys
    }

    /// Every server, primary first.
    public var servers: [PostgresServer] { [primary] + standbys }

    /// Starts a primary (initdb, about 1 s) and `standbys` standbys (pg_basebackup, about 0.5 s each).
    public static func start(standbys count: Int = 1, maxConnections: Int = 40) async throws -> PostgresCluster {
        let primary = try await makeServer(name: "primary")
        try await Commands.run(
            PostgresServer.binaries + "/initdb",
            ["-D", primary.dataDirectory, "--auth=trust", "-E", "UTF8", "--no-sync", "-U", "postgres", "--locale=C"],
            as: PostgresServer.serviceUser)
        let settings = """

            listen_addresses = '127.0.0.1'
            wal_level = replica
            max_wal_senders = 10
            hot_standby = on
            fsync = off
            max_connections = \(maxConnections)
            superuser_reserved_connections = 1
            shared_buffers = 32MB
            log_min_messages = warning

            """
        try await Commands.run(
            "/bin/sh", ["-c", "cat >> '\(primary.dataDirectory)/postgresql.conf' <<'CONF'\n\(settings)CONF"],
            as: PostgresServer.serviceUser)
        do {
            try await primary.start()
            var standbys: [PostgresServer] = []
            for index in 0..<count {
                let standby = try await makeServer(name: "standby-\(index + 1)")
                try await baseBackup(into: standby, from: primary)
                try await standby.start()
                standbys.append(standby)
            }
            return PostgresCluster(primary: primary, standbys: standbys)
        } catch {
            primary.destroy()
            throw TestServerError("\(error)\n\(primary.logTail())")
        }
    }

    /// Rebuilds `server` (a killed old primary) as a standby of `source` (pg_basebackup) and starts it.
    public static func reseed(_ server: PostgresServer, from source: PostgresServer) async throws {
        try? await server.stop()
        try await baseBackup(into: server, from: source)
        try await server.restart()
    }

    /// Replaces `server`'s data folder with a streaming base backup of `source`, set up as its standby.
    private static func baseBackup(into server: PostgresServer, from source: PostgresServer) async throws {
        try await Commands.run("/bin/rm", ["-rf", server.dataDirectory], as: PostgresServer.serviceUser)
        try await Commands.run(
            PostgresServer.binaries + "/pg_basebackup",
            [
                "-h", "127.0.0.1", "-p", String(source.port), "-U", "postgres", "-D", server.dataDirectory,
                "-R", "-X", "stream", "-c", "fast",
            ],
            as: PostgresServer.serviceUser)
    }

    /// Kills every server and removes their folders.
    public func destroy() {
        for server in servers { server.destroy() }
    }

    private static func makeServer(name: String) async throws -> PostgresServer {
        let data = try await Commands.makeFolder("clustersql-pg-\(name)", owner: PostgresServer.serviceUser)
        let run = try await Commands.makeFolder("clustersql-pgrun-\(name)", owner: PostgresServer.serviceUser)
        try await Commands.run("/bin/chmod", ["700", data], as: PostgresServer.serviceUser)
        return PostgresServer(name: name, port: try LoopbackPorts.free(), dataDirectory: data, runDirectory: run)
    }

    /// The cluster shared by the suites of this test process, started on first use.
    public static func shared() async throws -> PostgresCluster {
        try await shared.value()
    }

    /// Room for every suite of the parallel pass at once (at 40, a rehearsal's conformance suite met
    /// "too many clients" beside the cluster suites' two-node clusters on the same primary).
    private static let shared = StartedOnce { try await PostgresCluster.start(standbys: 1, maxConnections: 150) }
}

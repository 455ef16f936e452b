import ConnectionKit
import Foundation
import TestSupport

/// One real redis-server on 127.0.0.1, in its own temporary folder, with
/// nothing persisted (`save ""`, `appendonly no`).
///
/// redis-server runs as root without complaint, so it runs as whoever runs the
/// tests. Faults: ``kill()`` (SIGKILL), ``pause()``/``resume()`` (SIGSTOP/SIGCONT),
/// ``restart()``. Stopped by pid, never by name. A replica is a server started
/// with `replicaOf`; sentinels come with the Sentinel client.
public final class RedisServer: RedisProcess {
    /// The server's process: name, port, folders, log, pid and the faults done to it.
    public let process: ServerProcess
    /// The `requirepass` password, if any (the `default` user's).
    public let password: String?
    /// Its configuration file.
    public var configFile: String { process.runDirectory + "/redis.conf" }
    /// How it speaks TLS, if it does: then only TLS, on ``port``.
    public let tls: ServerTLS?

    init(process: ServerProcess, password: String?, tls: ServerTLS?) {
        self.process = process
        self.password = password
        self.tls = tls
    }

    /// A `redis://` URL for the server (`rediss://` with TLS; with the password when there is one).
    public var url: String {
        let scheme = tls == nil ? "redis" : "rediss"
        return password.map { "\(scheme)://:\($0)@127.0.0.1:\(port)" } ?? "\(scheme)://127.0.0.1:\(port)"
    }

    /// Creates and starts a server (well under a second); with `password`, every
    /// client must AUTH; with `replicaOf`, it replicates that port on 127.0.0.1;
    /// with `tls`, it speaks only TLS (replicating over TLS too).
    /// `extra` lines are appended to its configuration.
    public static func start(
        name: String = "redis", password: String? = nil, replicaOf: Int? = nil, tls: ServerTLS? = nil, extra: [String] = []
    ) async throws -> RedisServer {
        let data = try await Commands.makeFolder("clustersql-redis-\(name)", owner: nil)
        let process = ServerProcess(
            name: name, port: try LoopbackPorts.free(), dataDirectory: data, runDirectory: data,
            logFile: data + "/redis.log")
        let server = RedisServer(process: process, password: password, tls: tls)
        var lines =
            (tls?.redisLines(port: process.port) ?? ["port \(process.port)"]) + [
                "bind 127.0.0.1", "dir \(data)", "save \"\"", "appendonly no",
                "repl-diskless-sync-delay 0", "logfile \(process.logFile)", "daemonize no",
            ]
        if let password { lines += ["requirepass \(password)", "masterauth \(password)"] }
        if let replicaOf { lines.append("replicaof 127.0.0.1 \(replicaOf)") }
        try (lines + extra).joined(separator: "\n").appending("\n").write(toFile: server.configFile, atomically: true, encoding: .utf8)
        do {
            try await server.launch()
            return server
        } catch {
            server.destroy()
            throw error
        }
    }

    /// The server shared by the suites of this test process (no password), started on first use.
    public static func shared() async throws -> RedisServer {
        try await shared.value()
    }

    private static let shared = StartedOnce { try await RedisServer.start(name: "shared") }

    /// Waits until this replica's link to its master is up (`master_link_status:up`),
    /// so that what the master acknowledges from then on reaches it.
    public func waitUntilReplicating(timeout: Duration = .seconds(20)) async throws {
        try await process.waitUntilReady(timeout: timeout) {
            (try? await cli("INFO", "replication"))?.contains("master_link_status:up") == true
        }
    }

    /// Starts the server again after ``kill()`` (with an empty data set: nothing is persisted);
    /// with `replicaOf`, as a replica of that port on 127.0.0.1 (an old master coming back after a failover).
    public func restart(replicaOf: Int? = nil) async throws {
        process.forget()
        try await launch(arguments: replicaOf.map { ["--replicaof", "127.0.0.1", String($0)] } ?? [])
    }

    /// What `ROLE` says the server is now: `master`, `slave` (a replica) or `sentinel`.
    public func role() async throws -> String {
        String(try await cli("ROLE").split(whereSeparator: \.isNewline).first ?? "")
    }
}

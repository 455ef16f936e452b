import ConnectionKit
import Foundation

/// One real PostgreSQL server on 127.0.0.1, in its own temporary folder.
///
/// Runs as the `postgres` user when the tests run as root (PostgreSQL refuses
/// root), as the current user otherwise. Faults: ``kill()`` (SIGKILL),
/// ``pause()``/``resume()`` (SIGSTOP/SIGCONT: a server that accepts TCP and
/// never answers), ``restart()``, ``promote()``. Stopped by pid, never by name.
public final class PostgresServer: ProcessBackedServer {
    /// The binaries of the installed PostgreSQL.
    public static let binaries = "/usr/lib/postgresql/15/bin"
    static let serviceUser = "postgres"

    /// The server's process: name, port, folders, log, pid and the faults done to it.
    public let process: ServerProcess

    init(name: String, port: Int, dataDirectory: String, runDirectory: String) {
        process = ServerProcess(
            name: name, port: port, dataDirectory: dataDirectory, runDirectory: runDirectory,
            logFile: runDirectory + "/server.log")
    }

    /// A libpq keyword/value DSN for the `postgres` superuser (trust authentication).
    public var dsn: String { "host=127.0.0.1 port=\(port) user=postgres dbname=postgres" }

    /// The same as a `postgres://` URI.
    public var uri: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    /// Starts the server and waits until it answers a query.
    public func start() async throws {
        try await process.awaitKilledGone()
        do {
            try await Commands.run(
                Self.binaries + "/pg_ctl",
                ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-o", "-p \(port) -k \(runDirectory)", "start"],
                as: Self.serviceUser)
        } catch {
            throw TestServerError("\(error)\n\(logTail())")
        }
        let pidText = try String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)
        guard let first = pidText.split(separator: "\n").first, let value = Int32(first) else {
            throw TestServerError("\(name): no pid in postmaster.pid\n\(logTail())")
        }
        process.adopt(value)
        try await waitUntilReady()
    }

    /// Polls `SELECT 1` until it succeeds (a pid alone proves nothing).
    public func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        try await process.waitUntilReady(timeout: timeout) { (try? await query("SELECT 1")) == "1" }
    }

    /// Runs SQL through `psql` and returns its unaligned output (for the harness itself).
    @discardableResult
    public func query(_ sql: String) async throws -> String {
        let result = try await Commands.run(
            Self.binaries + "/psql",
            ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            environment: ["PGCONNECT_TIMEOUT": "2"])
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Creates a login role that must authenticate with `password` (scram-sha-256
    /// over TCP; every other user keeps trust) and reloads the configuration.
    public func addPasswordUser(_ name: String, password: String) async throws {
        try await query("CREATE ROLE \(name) LOGIN PASSWORD '\(password)'")
        let hba = dataDirectory + "/pg_hba.conf"
        try await Commands.run(
            "/bin/sh",
            ["-c", "printf 'host all \(name) 127.0.0.1/32 scram-sha-256\\n' | cat - '\(hba)' > '\(hba).new' && mv '\(hba).new' '\(hba)'"],
            as: Self.serviceUser)
        try await query("SELECT pg_reload_conf()")
    }

    /// Turns TLS on with a fresh self-signed certificate for `localhost` and
    /// 127.0.0.1, reloads, and returns the certificate's path (to use as `sslrootcert`).
    @discardableResult
    public func enableTLS() async throws -> String {
        let (certificate, key) = try await Commands.makeSelfSignedCertificate(in: runDirectory, owner: Self.serviceUser)
        try await query("ALTER SYSTEM SET ssl = on")
        try await query("ALTER SYSTEM SET ssl_cert_file = '\(certificate)'")
        try await query("ALTER SYSTEM SET ssl_key_file = '\(key)'")
        try await query("SELECT pg_reload_conf()")
        return certificate
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`).
    public func isInRecovery() async throws -> Bool {
        try await query("SELECT pg_is_in_recovery()") == "t"
    }

    /// Starts the server again after ``kill()`` or ``stop()``.
    public func restart() async throws {
        process.forget()
        try await start()
    }

    /// A clean, fast shutdown.
    public func stop() async throws {
        guard let value = processID else { return }
        Foundation.kill(value, SIGCONT)
        try await Commands.run(
            Self.binaries + "/pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"], as: Self.serviceUser, allowFailure: true)
        process.forget()
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    public func promote() async throws {
        try await Commands.run(Self.binaries + "/pg_ctl", ["-D", dataDirectory, "-w", "promote"], as: Self.serviceUser)
        let deadline = ContinuousClock.now + .seconds(30)
        while try await isInRecovery() {
            guard ContinuousClock.now < deadline else { throw TestServerError("\(name) stayed in recovery\n\(logTail())") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

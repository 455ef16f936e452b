import ConnectionKit
import Foundation

/// One real PostgreSQL server on 127.0.0.1, in its own temporary folder.
///
/// Runs as the `postgres` user when the tests run as root (PostgreSQL refuses
/// root), as the current user otherwise. Faults: ``kill()`` (SIGKILL),
/// ``pause()``/``resume()`` (SIGSTOP/SIGCONT: a server that accepts TCP and
/// never answers), ``restart()``, ``promote()``. Stopped by pid, never by name.
public final class PostgresServer: Sendable {
    /// The binaries of the installed PostgreSQL.
    public static let binaries = "/usr/lib/postgresql/15/bin"
    static let serviceUser = "postgres"

    /// A name for messages (`primary`, `standby-1`).
    public let name: String
    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// The data folder.
    public let dataDirectory: String
    /// The folder of its Unix socket and log.
    public let runDirectory: String
    private let pid = Locked<Int32?>(nil)

    init(name: String, port: Int, dataDirectory: String, runDirectory: String) {
        self.name = name
        self.port = port
        self.dataDirectory = dataDirectory
        self.runDirectory = runDirectory
    }

    /// A libpq keyword/value DSN for the `postgres` superuser (trust authentication).
    public var dsn: String { "host=127.0.0.1 port=\(port) user=postgres dbname=postgres" }

    /// The same as a `postgres://` URI.
    public var uri: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    /// The server's process id while it runs.
    public var processID: Int32? { pid.withLock { $0 } }

    var logFile: String { runDirectory + "/server.log" }

    /// Starts the server and waits until it answers a query.
    public func start() async throws {
        try await Commands.run(
            Self.binaries + "/pg_ctl",
            ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-o", "-p \(port) -k \(runDirectory)", "start"],
            as: Self.serviceUser)
        let pidText = try String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)
        guard let first = pidText.split(separator: "\n").first, let value = Int32(first) else {
            throw TestServerError("\(name): no pid in postmaster.pid\n\(logTail())")
        }
        pid.withLock { $0 = value }
        Teardown.track(value)
        try await waitUntilReady()
    }

    /// Polls `SELECT 1` until it succeeds (a pid alone proves nothing).
    public func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await query("SELECT 1")) == "1" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestServerError("\(name) on port \(port) did not answer within \(timeout)\n\(logTail())")
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
            "/bin/sh", ["-c", "printf 'host all \(name) 127.0.0.1/32 scram-sha-256\\n' | cat - '\(hba)' > '\(hba).new' && mv '\(hba).new' '\(hba)'"],
            as: Self.serviceUser)
        try await query("SELECT pg_reload_conf()")
    }

    /// Turns TLS on with a fresh self-signed certificate for `localhost` and
    /// 127.0.0.1, reloads, and returns the certificate's path (to use as `sslrootcert`).
    @discardableResult
    public func enableTLS() async throws -> String {
        let certificate = runDirectory + "/server.crt"
        let key = runDirectory + "/server.key"
        try await Commands.run(
            "/usr/bin/openssl",
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate],
            as: Self.serviceUser)
        try await Commands.run("/bin/chmod", ["600", key], as: Self.serviceUser)
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

    /// SIGKILL: the process dies, its connections reset. Waits until the port refuses connections.
    public func kill() async throws {
        guard let value = pid.withLock({ $0 }) else { return }
        Foundation.kill(value, SIGCONT)
        Foundation.kill(value, SIGKILL)
        try await waitUntil("\(name) refuses connections", timeout: .seconds(30)) { !Self.accepts(port: port) }
    }

    /// SIGSTOP to the postmaster and every backend (each connection has its own
    /// process): the server keeps its sockets open but never answers.
    public func pause() {
        guard let value = pid.withLock({ $0 }) else { return }
        Foundation.kill(value, SIGSTOP)
        for child in Self.children(of: value) { Foundation.kill(child, SIGSTOP) }
    }

    /// SIGCONT after ``pause()``.
    public func resume() {
        guard let value = pid.withLock({ $0 }) else { return }
        for child in Self.children(of: value) { Foundation.kill(child, SIGCONT) }
        Foundation.kill(value, SIGCONT)
    }

    /// The pids whose parent is `parent`, read from /proc.
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // After "pid (comm) ": state, then the parent pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent ? pid : nil
        }
    }

    /// Starts the server again after ``kill()`` or ``stop()``.
    public func restart() async throws {
        if let old = pid.withLock({ $0 }) { Teardown.untrack(old) }
        try await start()
    }

    /// A clean, fast shutdown.
    public func stop() async throws {
        guard let value = pid.withLock({ $0 }) else { return }
        Foundation.kill(value, SIGCONT)
        try await Commands.run(Self.binaries + "/pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"], as: Self.serviceUser, allowFailure: true)
        Teardown.untrack(value)
        pid.withLock { $0 = nil }
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

    /// The end of the server's log, for failure messages.
    public func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "(no log at \(logFile))"
        return "--- \(name) log (\(logFile)) ---\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Kills the server if it runs and removes its folders.
    public func destroy() {
        if let value = pid.withLock({ $0 }) {
            Foundation.kill(value, SIGCONT)
            Foundation.kill(value, SIGKILL)
            Teardown.untrack(value)
        }
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: runDirectory)
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

import ConnectionKit
import Foundation
import TestSupport

/// One real standalone MariaDB server on 127.0.0.1, in its own temporary folder.
///
/// mariadbd refuses to run as root, so when the tests run as root its
/// configuration says `user=mysql` and the server drops privileges itself
/// (its pid is then the one started, which matters for kill and pause). A user
/// `test`/`test` may connect over TCP from 127.0.0.1; the harness itself talks
/// to the server through its Unix socket as `root` (no password).
public final class MariaDBServer: ProcessBackedServer {
    static let serviceUser = "mysql"

    /// The server's process: name, port, folders, log, pid and the faults done to it.
    public let process: ServerProcess

    init(name: String, port: Int, dataDirectory: String, runDirectory: String) {
        process = ServerProcess(
            name: name, port: port, dataDirectory: dataDirectory, runDirectory: runDirectory,
            logFile: runDirectory + "/error.log")
    }

    /// The `mysql://` DSN of the TCP test user.
    public var dsn: String { "mysql://test:test@127.0.0.1:\(port)/test" }
    var configFile: String { runDirectory + "/my.cnf" }
    var socket: String { runDirectory + "/mysqld.sock" }

    /// Creates, initialises and starts a standalone server (about 3 s), with a
    /// `test` database and user; with `tls`, it offers TLS with a self-signed
    /// certificate for localhost (``certificatePath``).
    public static func start(name: String = "mariadb", maxConnections: Int = 40, tls: Bool = false) async throws -> MariaDBServer {
        let server = try await make(name: name)
        var extra = ""
        if tls {
            let (certificate, key) = try await Commands.makeSelfSignedCertificate(
                in: server.runDirectory, owner: Commands.isRoot ? serviceUser : nil)
            extra = "ssl-cert=\(certificate)\nssl-key=\(key)"
        }
        try server.writeConfiguration(maxConnections: maxConnections, extra: extra)
        do {
            try await server.install()
            try await server.launch()
            try await server.createTestUser()
            return server
        } catch {
            let log = server.logTail()
            server.destroy()
            throw TestServerError("\(error)\n\(log)")
        }
    }

    /// The standalone server shared by the suites of this test process, started on first use.
    public static func shared() async throws -> MariaDBServer {
        try await shared.value()
    }

    /// Room for every suite of the parallel pass at once (the conformance suite alone holds 20, and the
    /// wrong-server tests' clients are held until MariaDB sees them fail its handshake): at 40, a CI
    /// rehearsal saw `Too many connections` (1040) under load.
    private static let shared = StartedOnce { try await MariaDBServer.start(name: "shared", maxConnections: 150) }

    /// The server's self-signed certificate, when started with `tls`.
    public var certificatePath: String { runDirectory + "/server.crt" }

    /// Creates a user that may connect over TCP with `password`, with `grants`
    /// (such as `SELECT, INSERT ON test.*`), and no administrative privilege.
    public func addUser(_ user: String, password: String, grants: String) async throws {
        try await query("CREATE USER '\(user)'@'%' IDENTIFIED BY '\(password)'; GRANT \(grants) TO '\(user)'@'%'")
    }

    static func make(name: String) async throws -> MariaDBServer {
        let owner = Commands.isRoot ? serviceUser : nil
        let data = try await Commands.makeFolder("clustersql-mariadb-\(name)", owner: owner)
        let run = try await Commands.makeFolder("clustersql-mariadbrun-\(name)", owner: owner)
        return MariaDBServer(name: name, port: try LoopbackPorts.free(), dataDirectory: data, runDirectory: run)
    }

    func writeConfiguration(maxConnections: Int, extra: String) throws {
        let server = self
        let data = dataDirectory
        let run = runDirectory
        let settings = """
            [mariadbd]
            \(Commands.isRoot ? "user=\(Self.serviceUser)" : "")
            datadir=\(data)
            socket=\(server.socket)
            pid-file=\(run)/mysqld.pid
            port=\(server.port)
            bind-address=127.0.0.1
            skip-name-resolve
            log-error=\(server.logFile)
            tmpdir=\(run)
            character-set-server=utf8mb4
            collation-server=utf8mb4_unicode_ci
            max_connections=\(maxConnections)
            innodb_buffer_pool_size=64M
            innodb_log_file_size=16M
            innodb_flush_log_at_trx_commit=2
            \(extra)

            """
        try settings.write(toFile: server.configFile, atomically: true, encoding: .utf8)
    }

    func install() async throws {
        try await Commands.run(
            "/usr/bin/mariadb-install-db",
            ["--defaults-file=\(configFile)", "--skip-test-db", "--auth-root-authentication-method=normal"]
                + (Commands.isRoot ? ["--user=\(Self.serviceUser)"] : []))
    }

    func createTestUser() async throws {
        try await query(
            """
            CREATE DATABASE test; CREATE USER 'test'@'%' IDENTIFIED BY 'test';
            GRANT ALL ON *.* TO 'test'@'%'; FLUSH PRIVILEGES
            """)
    }

    /// Starts mariadbd (it does not daemonize) and waits until it answers a query.
    func launch(arguments: [String] = [], readyTimeout: Duration = .seconds(60)) async throws {
        try await process.awaitKilledGone()
        let value = try Commands.spawnServer(["/usr/sbin/mariadbd", "--defaults-file=\(configFile)"] + arguments, outputPath: logFile)
        process.adopt(value)
        try await waitUntilReady(timeout: readyTimeout)
    }

    /// Polls `SELECT 1` until it succeeds.
    public func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        try await process.waitUntilReady(timeout: timeout) { (try? await query("SELECT 1")) == "1" }
    }

    /// Runs SQL as root through the socket and returns the tab-separated output.
    @discardableResult
    public func query(_ sql: String) async throws -> String {
        let result = try await Commands.run(
            "/usr/bin/mariadb", ["--no-defaults", "-S", socket, "-u", "root", "--connect-timeout=2", "-N", "-B", "-e", sql])
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts the server again after ``kill()`` (a Galera node rejoins its
    /// cluster, by IST or a full SST, hence the longer wait).
    public func restart() async throws {
        try await launch(readyTimeout: .seconds(120))
    }

    /// A global status variable (`wsrep_local_state`, `wsrep_ready`, ...).
    public func status(_ variable: String) async throws -> String {
        let row = try await query("SHOW GLOBAL STATUS LIKE '\(variable)'")
        return row.split(separator: "\t").last.map(String.init) ?? ""
    }
}

import ConnectionKit
import Foundation

/// A command of the test harness failed; the message has its output and how to fix the machine.
public struct TestServerError: Error, CustomStringConvertible {
    /// What failed, with the command's output or the server's log tail.
    public let message: String
    /// The message.
    public var description: String { message }

    /// Creates an error.
    public init(_ message: String) { self.message = message }
}

/// The command that installs every server the suites need.
public let setupCommand = "bash scripts/setup.sh"

/// Runs programs for the harness without blocking a cooperative thread.
public enum Commands {
    /// Whether this process runs as root (servers then run as their service users).
    public static var isRoot: Bool { getuid() == 0 }

    /// Runs `executable` with `arguments`, as `user` when root (through `runuser`),
    /// and returns its exit status and combined output.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], as user: String? = nil, environment: [String: String] = [:],
        allowFailure: Bool = false
    ) async throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestServerError("\(executable) is not installed; run `\(setupCommand)` first")
        }
        let argv = (user != nil && isRoot) ? ["/usr/sbin/runuser", "-u", user!, "--", executable] + arguments : [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let (status, text, _) = try await spawnAndCollect(argv, environment: env, separateErrors: false)
        if status != 0 && !allowFailure {
            throw TestServerError("`\(([executable] + arguments).joined(separator: " "))` exited with \(status):\n\(text.suffix(3000))")
        }
        return (status, text)
    }

    /// Runs `executable` with exactly `environment` (nothing inherited) and
    /// returns its exit status, standard output and standard error apart: for
    /// tests of a command-line tool, without blocking a cooperative thread.
    public static func runCapturing(
        _ executable: String, _ arguments: [String], environment: [String: String]
    ) async throws -> (status: Int32, output: String, errors: String) {
        try await spawnAndCollect([executable] + arguments, environment: environment, separateErrors: true)
    }

    /// Runs `argv` to its end with its output in temporary files (removed
    /// afterwards) and returns the exit status and what it wrote: stdout and
    /// stderr apart, or both in `output` (with `errors` empty).
    private static func spawnAndCollect(
        _ argv: [String], environment: [String: String], separateErrors: Bool
    ) async throws -> (status: Int32, output: String, errors: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-cmd-\(UUID().uuidString)").path
        let outputPath = base + ".out"
        let errorPath = separateErrors ? base + ".err" : nil
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            if let errorPath { try? FileManager.default.removeItem(atPath: errorPath) }
        }
        let status = try await spawnAndWait(argv, environment: environment, outputPath: outputPath, errorPath: errorPath)
        func contents(_ path: String?) -> String { path.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }
        return (status, contents(outputPath), contents(errorPath))
    }

    /// Spawns `argv` with stdin from /dev/null, stdout into `outputPath` and
    /// stderr into `errorPath` (or with stdout when nil), and waits for it with
    /// `waitpid` on a thread of its own.
    ///
    /// Not Foundation's `Process`: on Linux it reports no termination while a
    /// grandchild lives on (checked: `sh -c "sleep 30 & exit 0"` never ends
    /// for it), and `pg_ctl start` leaves the server running by design.
    static func spawnAndWait(
        _ argv: [String], environment: [String: String], outputPath: String, errorPath: String? = nil
    ) async throws -> Int32 {
        let child = try spawn(argv, environment: environment, outputPath: outputPath, errorPath: errorPath)
        return await withCheckedContinuation { continuation in
            reap(child) { continuation.resume(returning: $0) }
        }
    }

    /// Starts a long-running server process (one that does not daemonize) and
    /// returns its pid; a thread reaps it whenever it exits, so a killed server
    /// leaves no zombie behind.
    public static func spawnServer(_ argv: [String], outputPath: String) throws -> Int32 {
        let pid = try spawn(argv, environment: ProcessInfo.processInfo.environment, outputPath: outputPath)
        reap(pid) { _ in }
        return pid
    }

    /// Calls `done` with the exit status (128 + signal when killed) on a thread that waits for `pid`.
    private static func reap(_ pid: pid_t, _ done: @escaping @Sendable (Int32) -> Void) {
        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let signal = status & 0x7f
            done(signal == 0 ? (status >> 8) & 0xff : 128 + signal)
        }
        waiter.name = "waitpid-\(pid)"
        waiter.start()
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module does not show.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    private static func spawn(_ argv: [String], environment: [String: String], outputPath: String, errorPath: String? = nil) throws -> pid_t
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else crosses into the child: a socket it inherited (the
        // tests' own client connections, a fake server's accepted ones) would
        // stay open in it after we close ours, so the peer would never see it close.
        _ = closeFrom?(&actions, 3)
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        // The child must not inherit this thread's blocked signals (Swift's
        // threads block some): pgbench's -T timer is a SIGALRM, for one.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        guard rc == 0 else { throw TestServerError("cannot start \(argv[0]): error \(rc)") }
        return pid
    }

    /// A self-signed certificate for `localhost` and 127.0.0.1 (valid two
    /// days) and its key, written into `folder` and owned by `owner` when root.
    public static func makeSelfSignedCertificate(in folder: String, owner: String?) async throws -> (certificate: String, key: String) {
        let certificate = folder + "/server.crt"
        let key = folder + "/server.key"
        try await run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate,
            ],
            as: owner)
        try await run("/bin/chmod", ["600", key], as: owner)
        return (certificate, key)
    }

    /// A fresh folder that `user` (when root) owns; removed by the caller.
    public static func makeFolder(_ prefix: String, owner user: String?) async throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if let user, isRoot { try await run("/usr/bin/chown", ["-R", "\(user):\(user)", path]) }
        Teardown.track(folder: path)
        return path
    }
}

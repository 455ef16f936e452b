import ConnectionKit
import Foundation
import TestSupport

/// What every test server shares: its name, port, folders and log, and the
/// process it runs as, with the faults done to it by pid (kill, pause, resume).
public final class ServerProcess: Sendable {
    /// A name for messages.
    public let name: String
    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// The data folder.
    public let dataDirectory: String
    /// The folder of its socket, configuration and log.
    public let runDirectory: String
    /// The server's log file.
    public let logFile: String
    private let pid = Locked<Int32?>(nil)
    private let paused = Locked(false)
    /// Pids killed but maybe not yet reaped (a killed process lingers as a zombie for seconds here).
    private let killed = Locked<[Int32]>([])

    init(name: String, port: Int, dataDirectory: String, runDirectory: String, logFile: String) {
        self.name = name
        self.port = port
        self.dataDirectory = dataDirectory
        self.runDirectory = runDirectory
        self.logFile = logFile
    }

    /// The server's process id while it runs.
    public var processID: Int32? { pid.withLock { $0 } }

    /// Whether ``pause()`` stopped it and no ``resume()`` followed.
    public var isPaused: Bool { paused.withLock { $0 } }

    /// Records the pid of a started server, to be killed at exit if still running.
    func adopt(_ value: Int32) {
        pid.withLock { $0 = value }
        Teardown.track(value)
    }

    /// Waits until every process killed earlier is gone for good: a server
    /// refuses to start while the pid in its lock file still exists, zombies included.
    func awaitKilledGone() async throws {
        let pending = killed.withLock { $0 }
        for value in pending {
            try await waitUntil("\(name)'s killed process \(value) is gone", timeout: .seconds(30)) {
                Foundation.kill(value, 0) != 0 && errno == ESRCH
            }
        }
        killed.withLock { $0.removeAll { pending.contains($0) } }
    }

    /// Forgets the pid of a server that stopped.
    func forget() {
        paused.withLock { $0 = false }
        if let old = pid.withLock({ s -> Int32? in
            defer { s = nil }
            return s
        }) {
            Teardown.untrack(old)
        }
    }

    /// Polls `answers` until it returns true (a pid alone proves nothing).
    func waitUntilReady(timeout: Duration, _ answers: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await answers() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestServerError("\(name) on port \(port) did not answer within \(timeout)\n\(logTail())")
    }

    /// SIGKILL: the process dies, its connections reset. Waits until the port refuses connections.
    public func kill() async throws {
        guard let value = processID else { return }
        Foundation.kill(value, SIGCONT)
        Foundation.kill(value, SIGKILL)
        killed.withLock { $0.append(value) }
        forget()
        try await waitUntil("\(name) refuses connections", timeout: .seconds(30)) { !Self.accepts(port: port) }
    }

    /// SIGSTOP to the server and its child processes (PostgreSQL has one per
    /// connection): it keeps its sockets open but never answers.
    public func pause() async {
        guard let value = processID else { return }
        paused.withLock { $0 = true }
        Foundation.kill(value, SIGSTOP)
        let children = Self.children(of: value)
        for child in children { Foundation.kill(child, SIGSTOP) }
        // kill() only queues the signal: wait (briefly) until every thread has stopped, so that
        // nothing sent after pause() is answered by a thread that had not stopped yet.
        for pid in [value] + children { await Self.waitUntilStopped(pid) }
    }

    /// Polls `/proc/pid/task/*/stat` until every thread of `pid` is stopped (state T), for at most 2 s
    /// (sleeping between polls, so that no thread of the cooperative pool is held).
    static func waitUntilStopped(_ pid: Int32) async {
        for _ in 0..<2_000 {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let running = tasks.contains { task in
                // Gone (no fields) counts as not running.
                let state = statFields("/proc/\(pid)/task/\(task)/stat")?.first ?? "X"
                return !["T", "t", "Z", "X"].contains(state)
            }
            if !running { return }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// SIGCONT after ``pause()``.
    public func resume() {
        guard let value = processID else { return }
        paused.withLock { $0 = false }
        for child in Self.children(of: value) { Foundation.kill(child, SIGCONT) }
        Foundation.kill(value, SIGCONT)
    }

    /// The end of the log, for failure messages.
    public func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "(no log at \(logFile))"
        return "--- \(name) log (\(logFile)) ---\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Kills the server if it runs and removes its folders.
    public func destroy() {
        if let value = processID {
            Foundation.kill(value, SIGCONT)
            Foundation.kill(value, SIGKILL)
            forget()
        }
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: runDirectory)
    }

    /// The pids whose parent is `parent`, read from /proc.
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), let fields = statFields("/proc/\(entry)/stat") else { return nil }
            return fields.count > 1 && Int32(fields[1]) == parent ? pid : nil
        }
    }

    /// The fields of a `/proc/…/stat` file after "pid (comm) ": state, parent pid, …; `nil` when it is gone.
    static func statFields(_ path: String) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        LoopbackPorts.withSocket(port: port) { fd, address, length in connect(fd, address, length) == 0 }
    }
}

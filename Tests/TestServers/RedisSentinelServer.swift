import Foundation
import TestSupport

/// One real redis-sentinel (`redis-server FILE --sentinel`) on 127.0.0.1, in
/// its own temporary folder with its own writable configuration file (a
/// sentinel rewrites it as it learns the topology, so a restart keeps what it knew).
public final class RedisSentinelServer: RedisProcess {
    /// The sentinel's process: name, port, folders, log, pid and the faults done to it.
    public let process: ServerProcess
    /// The sentinel's own `requirepass` password, if any (not the data nodes').
    public let password: String?
    /// Its configuration file, which the sentinel rewrites.
    public var configFile: String { process.runDirectory + "/sentinel.conf" }
    /// How it speaks TLS, if it does: then only TLS, to clients and to the data nodes and other sentinels.
    public let tls: ServerTLS?

    init(process: ServerProcess, password: String?, tls: ServerTLS?) {
        self.process = process
        self.password = password
        self.tls = tls
    }

    /// `host:port` of the sentinel.
    public var address: String { "127.0.0.1:\(port)" }

    /// Creates and starts a sentinel that monitors `masterName` at 127.0.0.1:`masterPort`
    /// with `quorum`, noticing a dead master after `downAfter`. `dataPassword` is the
    /// data nodes' password (`sentinel auth-pass`), `password` the sentinels' own; with `tls`, it
    /// speaks only TLS (the data nodes must too).
    public static func start(
        name: String, masterName: String, masterPort: Int, quorum: Int = 2, downAfter: Duration = .seconds(1),
        failoverTimeout: Duration = .seconds(3), dataPassword: String? = nil, password: String? = nil, tls: ServerTLS? = nil
    ) async throws -> RedisSentinelServer {
        let folder = try await Commands.makeFolder("clustersql-sentinel-\(name)", owner: nil)
        let process = ServerProcess(
            name: name, port: try LoopbackPorts.free(), dataDirectory: folder, runDirectory: folder,
            logFile: folder + "/sentinel.log")
        let sentinel = RedisSentinelServer(process: process, password: password, tls: tls)
        var lines =
            (tls?.redisLines(port: process.port) ?? ["port \(process.port)"]) + [
                "bind 127.0.0.1", "dir \(folder)", "logfile \(process.logFile)", "daemonize no",
                "sentinel monitor \(masterName) 127.0.0.1 \(masterPort) \(quorum)",
                "sentinel down-after-milliseconds \(masterName) \(downAfter.milliseconds)",
                "sentinel failover-timeout \(masterName) \(failoverTimeout.milliseconds)",
            ]
        if let dataPassword { lines.append("sentinel auth-pass \(masterName) \(dataPassword)") }
        // Sentinels talk to each other with the same password clients use.
        if let password { lines += ["requirepass \(password)", "sentinel sentinel-pass \(password)"] }
        try lines.joined(separator: "\n").appending("\n").write(toFile: sentinel.configFile, atomically: true, encoding: .utf8)
        do {
            try await sentinel.launchSentinel()
            return sentinel
        } catch {
            sentinel.destroy()
            throw error
        }
    }

    /// Starts the sentinel again after ``kill()``, with the configuration it had rewritten.
    public func restart() async throws {
        process.forget()
        try await launchSentinel()
    }

    /// Starts the process and shortens its TILT period from 30 s to 2 s.
    ///
    /// A sentinel whose timer stalls for over 2 s (a start-up or a moment of CPU
    /// starvation on a loaded 2-core test machine, or a SIGSTOP) enters TILT mode
    /// and, for the TILT period, neither marks nor clears the down state of any
    /// instance: a replica that came back would stay listed as down for 30 s. The
    /// period is a `SENTINEL DEBUG` setting, not a configuration line, so it is
    /// set after every launch.
    private func launchSentinel() async throws {
        try await launch(arguments: ["--sentinel"])
        let answer = try await cli("SENTINEL", "DEBUG", "tilt-period", "2000")
        guard answer == "OK" else { throw TestServerError("\(name) refused SENTINEL DEBUG tilt-period: \(answer)") }
    }

    /// The port this sentinel names as `masterName`'s master now, or `nil` when it does not answer.
    public func masterPort(of masterName: String) async -> Int? {
        guard let output = try? await cli("SENTINEL", "get-master-addr-by-name", masterName) else { return nil }
        let lines = output.split(whereSeparator: \.isNewline)
        return lines.count == 2 ? Int(lines[1]) : nil
    }

    /// `SENTINEL MASTER masterName` as field → value (num-slaves, num-other-sentinels, flags...).
    public func masterState(of masterName: String) async throws -> [String: String] {
        let lines = try await cli("SENTINEL", "MASTER", masterName).split(whereSeparator: \.isNewline).map(String.init)
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: lines.count - 1, by: 2) { fields[lines[index]] = lines[index + 1] }
        return fields
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

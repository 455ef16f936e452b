import Foundation

/// A redis-server process, a data node or a sentinel: how both are started
/// from their configuration file and asked things through redis-cli, written once.
public protocol RedisProcess: ProcessBackedServer {
    /// The password redis-cli authenticates with, if any.
    var password: String? { get }
    /// The configuration file the process starts from.
    var configFile: String { get }
    /// How it speaks TLS, if it does (only TLS then: redis-cli goes over TLS too).
    var tls: ServerTLS? { get }
}

extension RedisProcess {
    /// Runs one command through `redis-cli` (authenticated when there is a
    /// password) and returns its raw output, trimmed: for the harness itself.
    @discardableResult
    public func cli(_ arguments: String...) async throws -> String {
        // The password goes through the environment, not the command line (which ps and error messages show).
        let result = try await Commands.run(
            "/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--raw"] + (tls?.redisCLIArguments ?? []) + arguments,
            environment: password.map { ["REDISCLI_AUTH": $0] } ?? [:])
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Polls `PING` through redis-cli until the process answers `PONG`.
    public func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        try await process.waitUntilReady(timeout: timeout) { (try? await cli("PING")) == "PONG" }
    }

    /// Starts `redis-server FILE arguments...` once the last killed process is gone, and waits until it answers.
    func launch(arguments: [String] = []) async throws {
        try await process.awaitKilledGone()
        let value = try Commands.spawnServer(
            ["/usr/bin/redis-server", configFile] + arguments, outputPath: process.runDirectory + "/stdout.log")
        process.adopt(value)
        try await waitUntilReady()
    }
}

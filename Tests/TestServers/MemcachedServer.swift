import Foundation
import TestSupport

/// One real memcached on 127.0.0.1 (`-U 0`: no UDP), as user `memcache` when
/// the tests run as root (memcached refuses root), in its own temporary folder.
/// Faults: ``kill()``, ``pause()``/``resume()``, ``restart()`` (it comes back empty).
/// Stopped by pid, never by name.
public final class MemcachedServer: ProcessBackedServer {
    /// The server's process: name, port, folder, log, pid and the faults done to it.
    public let process: ServerProcess
    /// The arguments it starts with.
    let arguments: [String]

    init(process: ServerProcess, arguments: [String]) {
        self.process = process
        self.arguments = arguments
    }

    /// `127.0.0.1:port`.
    public var address: String { "127.0.0.1:\(port)" }

    /// Creates and starts a server (instant) with `memoryMegabytes` of cache and an
    /// item size limit of `maxItemSize` bytes (memcached's `-I`, default 1 MiB); with `tls`, it speaks only TLS.
    public static func start(
        name: String = "memcached", memoryMegabytes: Int = 64, maxItemSize: Int? = nil, tls: ServerTLS? = nil
    ) async throws -> MemcachedServer {
        let folder = try await Commands.makeFolder("clustersql-memcached-\(name)", owner: Commands.isRoot ? "memcache" : nil)
        let port = try LoopbackPorts.free()
        let process = ServerProcess(name: name, port: port, dataDirectory: folder, runDirectory: folder, logFile: folder + "/memcached.log")
        var arguments = ["-p", String(port), "-U", "0", "-l", "127.0.0.1", "-m", String(memoryMegabytes), "-c", "1024"]
        if Commands.isRoot { arguments += ["-u", "memcache"] }
        if let maxItemSize { arguments += ["-I", String(maxItemSize)] }
        if let tls { arguments += tls.memcachedArguments }
        let server = MemcachedServer(process: process, arguments: arguments)
        do {
            try await server.launch()
            return server
        } catch {
            server.destroy()
            throw error
        }
    }

    func launch() async throws {
        try await process.awaitKilledGone()
        let value = try Commands.spawnServer(["/usr/bin/memcached"] + arguments, outputPath: process.logFile)
        process.adopt(value)
        try await process.waitUntilReady(timeout: .seconds(10)) { ServerProcess.accepts(port: port) }
    }

    /// Starts the server again after ``kill()``; it comes back empty.
    public func restart() async throws {
        process.forget()
        try await launch()
    }
}

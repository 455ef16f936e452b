/// A test server that runs as one ``ServerProcess``: what every such server
/// offers through it (its name, port, folders, pid and the faults done to it), written once.
public protocol ProcessBackedServer: Sendable {
    /// The server's process: name, port, folders, log, pid and the faults done to it.
    var process: ServerProcess { get }
}

extension ProcessBackedServer {
    /// A name for messages.
    public var name: String { process.name }
    /// The TCP port on 127.0.0.1.
    public var port: Int { process.port }
    /// The data folder.
    public var dataDirectory: String { process.dataDirectory }
    /// The folder of its socket, configuration and log.
    public var runDirectory: String { process.runDirectory }
    /// The server's process id while it runs.
    public var processID: Int32? { process.processID }
    var logFile: String { process.logFile }

    /// SIGKILL; waits until the port refuses connections.
    public func kill() async throws { try await process.kill() }
    /// SIGSTOP of the server and its children: sockets stay open, nothing answers.
    public func pause() async { await process.pause() }
    /// SIGCONT after ``pause()``.
    public func resume() { process.resume() }
    /// The end of the server's log.
    public func logTail(lines: Int = 40) -> String { process.logTail(lines: lines) }
    /// Kills the server if it runs and removes its folders.
    public func destroy() { process.destroy() }
}

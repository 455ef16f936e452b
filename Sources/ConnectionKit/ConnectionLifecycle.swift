/// How a pool opens, checks and closes its connections.
public struct ConnectionLifecycle<Connection: Sendable>: Sendable {
    /// Opens a connection (radix's dial hook: AUTH, SELECT and the like go here).
    public var dial: @Sendable () async throws -> Connection
    /// Closes a connection; must not throw.
    public var close: @Sendable (Connection) async -> Void
    /// Checks an idle connection; `nil` disables pinging.
    public var ping: (@Sendable (Connection) async throws -> Void)?

    /// Creates the hooks.
    public init(
        dial: @escaping @Sendable () async throws -> Connection,
        close: @escaping @Sendable (Connection) async -> Void,
        ping: (@Sendable (Connection) async throws -> Void)? = nil
    ) {
        self.dial = dial
        self.close = close
        self.ping = ping
    }
}

/// How a pool opens, checks and closes its connections.
@usableFromInline
package struct ConnectionLifecycle<Connection: Sendable, DialFailure: Error>: Sendable {
    /// Opens a connection (radix's dial hook: AUTH, SELECT and the like go here), failing with
    /// the client's own error.
    @usableFromInline package var dial: @Sendable () async throws(DialFailure) -> Connection
    /// Closes a connection; must not throw.
    @usableFromInline package var close: @Sendable (Connection) async -> Void
    /// Checks an idle connection; `nil` disables pinging.
    @usableFromInline package var ping: (@Sendable (Connection) async throws -> Void)?

    /// Creates the hooks.
    @usableFromInline package init(
        dial: @escaping @Sendable () async throws(DialFailure) -> Connection,
        close: @escaping @Sendable (Connection) async -> Void,
        ping: (@Sendable (Connection) async throws -> Void)? = nil
    ) {
        self.dial = dial
        self.close = close
        self.ping = ping
    }
}

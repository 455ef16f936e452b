/// The condition a test waited for did not come true in time.
public struct WaitTimedOut: Error, CustomStringConvertible {
    /// What was waited for.
    public let what: String
    /// How long.
    public let timeout: Duration
    /// `timed out after …s waiting until …`.
    public var description: String { "timed out after \(timeout) waiting until \(what)" }
}

/// Polls `condition` (every 200 µs, in real time) until it holds; throws
/// ``WaitTimedOut`` instead of hanging when it does not within `timeout`.
public func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what, timeout: timeout) }
        try await Task.sleep(for: .microseconds(200))
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
public func eventually(within limit: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

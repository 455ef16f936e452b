import ConnectionKit

/// The connections a pool has open, idle and borrowed alike, so that all of
/// them can be closed at once (a Sentinel client retiring a demoted master).
/// Touched when a connection opens or closes, never per command.
final class OpenConnections: Sendable {
    private struct State: Sendable {
        var connections: [ObjectIdentifier: RedisConnection] = [:]
        var closedAll = false
    }

    private let state = Locked(State())

    /// Registers a connection just opened; false after ``closeAll()``: a dial that
    /// was under way then must close its connection rather than hand it out.
    func opened(_ connection: RedisConnection) -> Bool {
        state.withLock { state in
            guard !state.closedAll else { return false }
            state.connections[ObjectIdentifier(connection)] = connection
            return true
        }
    }

    func closed(_ connection: RedisConnection) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    /// Closes every connection still open, and every one opened later; pending
    /// commands on them fail with ``RedisError/Code/connectionClosed``. Returns how many
    /// the pool held (a connection the server had already reset counts too: it was let go here).
    func closeAll() async -> Int {
        let open = state.withLock { state -> [RedisConnection] in
            state.closedAll = true
            defer { state.connections.removeAll() }
            return Array(state.connections.values)
        }
        for connection in open { await connection.close() }
        return open.count
    }
}

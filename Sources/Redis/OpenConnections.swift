import ConnectionKit

/// The connections a pool has open, idle and borrowed alike, so that all of
/// them can be closed at once (a Sentinel client retiring a demoted master).
/// Touched when a connection opens or closes, never per command.
final class OpenConnections: Sendable {
    private let connections = Locked<[ObjectIdentifier: RedisConnection]>([:])

    func opened(_ connection: RedisConnection) {
        connections.withLock { $0[ObjectIdentifier(connection)] = connection }
    }

    func closed(_ connection: RedisConnection) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    /// Closes every connection still open; pending commands on them fail with
    /// ``RedisError/Code/connectionClosed``. Returns how many were open.
    func closeAll() async -> Int {
        let open = connections.withLock { all -> [RedisConnection] in
            defer { all.removeAll() }
            return Array(all.values)
        }
        var closed = 0
        for connection in open where !connection.isBroken {
            closed += 1
            await connection.close()
        }
        return closed
    }
}

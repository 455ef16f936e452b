import SQLCore

extension FaultInjectingDriver: SQLReplicationDialect {
    /// The wrapped driver's role detection, run on `connection` (so through its faults); a
    /// primary when the wrapped driver does not adopt `SQLReplicationDialect`.
    public func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
        try await inner.dialectRole(on: connection)
    }

    /// The wrapped driver's replication reading, run on `connection` (so through its faults); no
    /// figure when the wrapped driver does not adopt `SQLReplicationDialect`.
    public func readReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError)
        -> ReplicationReading
    {
        try await inner.dialectReplication(on: connection, role: role, primaryPosition: primaryPosition)
    }
}

import SQLCore

extension SQLiteDriver: SQLReplicationDialect {
    /// A connection with `PRAGMA query_only` set is a read-only primary; any other a primary.
    /// A file does not replicate: no lag is ever measured.
    public func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
        try await connection.query("PRAGMA query_only")[0][0].isOn ? .readOnlyPrimary : .primary
    }
}

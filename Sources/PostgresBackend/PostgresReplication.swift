import SQLCore

extension PostgresDriver: SQLReplicationDialect {
    /// `pg_is_in_recovery()` makes a standby; `transaction_read_only` a read-only primary.
    public func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
        let row = try await connection.query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")[0]
        if row[0].isOn { return .standby }
        return row[1].isOn ? .readOnlyPrimary : .primary
    }

    /// A primary: its write position, `pg_current_wal_lsn()`. A standby: its replayed position,
    /// `pg_last_wal_replay_lsn()`, and the WAL bytes it has not replayed of `primaryPosition`
    /// (ClusterSQL times that lag itself, from when its checks first saw a primary past the
    /// replayed position: no server clocks compared). With no primary known, a standby that has
    /// replayed all the WAL it received lags by nothing, and one that has not by the age of the
    /// last transaction it replayed (`pg_last_xact_replay_timestamp()`).
    ///
    /// Asked with the role `NodeRole.unknown` (for a position only), the server says which it is:
    /// the insert position `pg_current_wal_insert_lsn()` on a primary (at or past every commit it
    /// acknowledged, whatever `synchronous_commit` says), the replayed one on a standby.
    public func readReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError)
        -> ReplicationReading
    {
        if role == .unknown {
            let row = try await connection.query(
                """
                SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END
                        - '0/0'::pg_lsn)::bigint
                """)[0]
            return ReplicationReading(position: row[0].looseInteger, lag: nil)
        }
        guard role == .standby else {
            let row = try await connection.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")[0]
            return ReplicationReading(position: row[0].looseInteger, lag: .caughtUp)
        }
        let row = try await connection.query(
            """
            SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, (pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint,
                   EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
            """)[0]
        guard let replayed = row[0].looseInteger else {
            return ReplicationReading(lag: ReplicationLag(isBehindByUnknown: true))
        }
        if let primaryPosition {
            return ReplicationReading(position: replayed, lag: ReplicationLag(bytesBehind: max(0, primaryPosition - replayed)))
        }
        let bytesBehind = max(0, (row[1].looseInteger ?? replayed) - replayed)
        guard bytesBehind > 0 else { return ReplicationReading(position: replayed, lag: ReplicationLag(seconds: 0, bytesBehind: 0)) }
        guard let age = row[2].looseDouble else {
            return ReplicationReading(position: replayed, lag: ReplicationLag(bytesBehind: bytesBehind, isBehindByUnknown: true))
        }
        return ReplicationReading(position: replayed, lag: ReplicationLag(seconds: max(0, age), bytesBehind: bytesBehind))
    }
}

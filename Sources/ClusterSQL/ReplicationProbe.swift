import SQLCore

/// Measures a node's replication lag over one of its connections, in the background checks,
/// after its role was read.
///
/// The cluster picks one per node from the driver's name (``forDriver(named:)``); pass your
/// own to ``ClusterDriver/addNode(name:driver:dsn:roleDetector:replicationProbe:)`` for other
/// backends or conventions.
public struct ReplicationProbe: Sendable {
    /// Reads the lag of a node of `role` on `connection`. `primaryPosition` is the largest write
    /// position the cluster's checks last read on a primary, if any (PostgreSQL compares a
    /// standby's replayed WAL with it).
    let measure:
        @Sendable (_ connection: any SQLConnection, _ role: NodeRole, _ primaryPosition: Int64?) async throws(SQLError) ->
            ReplicationReading

    /// Creates a probe from a closure.
    public init(
        measure:
            @escaping @Sendable (_ connection: any SQLConnection, _ role: NodeRole, _ primaryPosition: Int64?) async throws(SQLError) ->
            ReplicationReading
    ) {
        self.measure = measure
    }

    /// PostgreSQL. A primary: its write position, `pg_current_wal_lsn()`. A standby: its replayed
    /// position, `pg_last_wal_replay_lsn()`, and the WAL bytes it has not replayed of the primary's
    /// last known position; the cluster times that lag itself, from when its checks first saw a
    /// primary past the replayed position (no server clocks compared). With no primary known, a
    /// standby that has replayed all the WAL it received lags by nothing, and one that has not by
    /// the age of the last transaction it replayed (`pg_last_xact_replay_timestamp()`).
    ///
    /// Asked with the role `NodeRole.unknown` (read-your-writes asks so, for a position only), it
    /// lets the server say: the insert position `pg_current_wal_insert_lsn()` on a primary (at or
    /// past every commit it acknowledged, whatever `synchronous_commit` says), the replayed one on
    /// a standby.
    public static let postgres = ReplicationProbe { connection, role, primaryPosition throws(SQLError) in
        if role == .unknown {
            let row = try await connection.query(
                """
                SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END
                        - '0/0'::pg_lsn)::bigint
                """)[0]
            return ReplicationReading(position: integer(row[0]), lag: nil)
        }
        guard role == .standby else {
            let row = try await connection.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")[0]
            return ReplicationReading(position: integer(row[0]), lag: .caughtUp)
        }
        let row = try await connection.query(
            """
            SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, (pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint,
                   EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
            """)[0]
        guard let replayed = integer(row[0]) else {
            return ReplicationReading(lag: ReplicationLag(isBehindByUnknown: true))
        }
        if let primaryPosition {
            return ReplicationReading(position: replayed, lag: ReplicationLag(bytesBehind: max(0, primaryPosition - replayed)))
        }
        let bytesBehind = max(0, (integer(row[1]) ?? replayed) - replayed)
        guard bytesBehind > 0 else { return ReplicationReading(position: replayed, lag: ReplicationLag(seconds: 0, bytesBehind: 0)) }
        guard let age = double(row[2]) else {
            return ReplicationReading(position: replayed, lag: ReplicationLag(bytesBehind: bytesBehind, isBehindByUnknown: true))
        }
        return ReplicationReading(position: replayed, lag: ReplicationLag(seconds: max(0, age), bytesBehind: bytesBehind))
    }

    /// MariaDB and MySQL. A Galera node (`wsrep_on`): its receive queue
    /// (`wsrep_local_recv_queue`) and its last committed seqno as position. A replica
    /// (`SHOW REPLICA STATUS` has a row): `Seconds_Behind_Source` (`_Master`), which is `NULL`
    /// (behind by an unknown amount) while its replication threads are stopped. Anything else lags
    /// by nothing. An asynchronous replica has no position: read-your-writes waits for nothing there.
    public static let mariadb = ReplicationProbe { connection, role, _ throws(SQLError) in
        let status = try await connection.query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_recv_queue', 'wsrep_last_committed')")
        var values: [String: SQLValue] = [:]
        for row in status where row.values.count >= 2 { values[row[0].displayText.lowercased()] = row[1] }
        if let queue = values["wsrep_local_recv_queue"].flatMap(integer) {
            return ReplicationReading(
                position: values["wsrep_last_committed"].flatMap(integer),
                lag: ReplicationLag(transactionsBehind: Int(queue)))
        }
        guard role == .standby else { return ReplicationReading(lag: role == .unknown ? nil : .caughtUp) }
        // SHOW REPLICA STATUS: MariaDB 10.5.1 and MySQL 8.0.22 on (MySQL 8.4 dropped the SLAVE form).
        let replica: SQLRows
        do throws(SQLError) {
            replica = try await connection.query("SHOW REPLICA STATUS")
        } catch  where !error.isConnectionError {
            replica = try await connection.query("SHOW SLAVE STATUS")
        }
        guard let row = replica.rows.first else { return ReplicationReading(lag: .caughtUp) }
        // MySQL 8.0.22 on says Source where MariaDB (and older MySQL) says Master.
        guard let seconds = (row["Seconds_Behind_Source"] ?? row["Seconds_Behind_Master"]).flatMap(double) else {
            return ReplicationReading(lag: ReplicationLag(isBehindByUnknown: true))
        }
        return ReplicationReading(lag: ReplicationLag(seconds: seconds))
    }

    /// Nothing to measure (SQLite, backends without replication): no figure, and no limit holds against the node.
    public static let disabled = ReplicationProbe { _, _, _ throws(SQLError) in ReplicationReading(lag: nil) }

    /// The probe for a driver's `SQLDriver.name`: `postgres`, `mariadb` (also `mysql`); any other name gets ``disabled``.
    public static func forDriver(named name: String) -> ReplicationProbe {
        switch name {
        case "postgres", "postgresql": .postgres
        case "mariadb", "mysql": .mariadb
        default: .disabled
        }
    }

    private static func integer(_ value: SQLValue) -> Int64? {
        switch value {
        case .integer(let number): number
        case .null: nil
        default: Int64(value.displayText)
        }
    }

    private static func double(_ value: SQLValue) -> Double? {
        switch value {
        case .double(let number): number
        case .integer(let number): Double(number)
        case .null: nil
        default: Double(value.displayText)
        }
    }
}

import SQLCore

extension MariaDBDriver: SQLReplicationDialect {
    /// `read_only` makes a standby; on a Galera node (`wsrep_on`), anything but
    /// `wsrep_local_state = 4` (Synced) with `wsrep_ready = ON` is `NodeRole.notReady`. Only
    /// `SHOW` statements are used, which a Galera node outside the primary component still answers.
    public func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
        let variables = try await Self.settings(
            on: connection, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'wsrep_on')")
        if variables["wsrep_on"]?.isOn == true {
            let status = try await Self.settings(
                on: connection, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')")
            guard status["wsrep_local_state"]?.displayText == "4", status["wsrep_ready"]?.isOn == true else { return .notReady }
        }
        return variables["read_only"]?.isOn == true ? .standby : .primary
    }

    /// A Galera node (`wsrep_on`): its receive queue (`wsrep_local_recv_queue`) and its last
    /// committed seqno as position. A replica (`SHOW REPLICA STATUS` has a row):
    /// `Seconds_Behind_Source` (`_Master`), which is `NULL` (behind by an unknown amount) while its
    /// replication threads are stopped. Anything else lags by nothing. An asynchronous replica has
    /// no position: read-your-writes waits for nothing there.
    public func readReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError)
        -> ReplicationReading
    {
        let values = try await Self.settings(
            on: connection, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_recv_queue', 'wsrep_last_committed')")
        if let queue = values["wsrep_local_recv_queue"]?.looseInteger {
            return ReplicationReading(
                position: values["wsrep_last_committed"]?.looseInteger, lag: ReplicationLag(transactionsBehind: Int(queue)))
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
        guard let seconds = (row["Seconds_Behind_Source"] ?? row["Seconds_Behind_Master"])?.looseDouble else {
            return ReplicationReading(lag: ReplicationLag(isBehindByUnknown: true))
        }
        return ReplicationReading(lag: ReplicationLag(seconds: seconds))
    }

    /// The name/value rows of a `SHOW … WHERE Variable_name IN (…)` statement, names lowercased.
    private static func settings(on connection: any SQLConnection, _ sql: String) async throws(SQLError) -> [String: SQLValue] {
        var values: [String: SQLValue] = [:]
        for row in try await connection.query(sql) where row.values.count >= 2 {
            values[row[0].displayText.lowercased()] = row[1]
        }
        return values
    }
}

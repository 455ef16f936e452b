import SQLCore

/// Finds out a node's role over one of its connections.
///
/// The cluster picks one per node from the driver's name
/// (``forDriver(named:)``); pass your own to ``ClusterDriver/addNode(name:driver:dsn:roleDetector:replicationProbe:)``
/// for other backends or conventions.
public struct RoleDetector: Sendable {
    /// Runs the role queries on `connection`.
    let detect: @Sendable (_ connection: any SQLConnection) async throws(SQLError) -> NodeRole

    /// Creates a detector from a closure.
    public init(detect: @escaping @Sendable (_ connection: any SQLConnection) async throws(SQLError) -> NodeRole) {
        self.detect = detect
    }

    /// PostgreSQL: `pg_is_in_recovery()` (standby) and `transaction_read_only` (read-only primary).
    public static let postgres = RoleDetector { connection throws(SQLError) in
        let row = try await connection.query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")[0]
        if isOn(row[0]) { return .standby }
        return isOn(row[1]) ? .readOnlyPrimary : .primary
    }

    /// MariaDB and MySQL: `read_only` makes a standby; on a Galera node
    /// (`wsrep_on`), anything but `wsrep_local_state = 4` (Synced) with
    /// `wsrep_ready = ON` is `NodeRole.notReady`. Only `SHOW` statements are
    /// used, which a Galera node outside the primary component still answers.
    public static let mariadb = RoleDetector { connection throws(SQLError) in
        let variables = try await settings(connection, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'wsrep_on')")
        if isOn(variables["wsrep_on"] ?? .null) {
            let status = try await settings(
                connection, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')")
            guard status["wsrep_local_state"]?.displayText == "4", isOn(status["wsrep_ready"] ?? .null) else { return .notReady }
        }
        return isOn(variables["read_only"] ?? .null) ? .standby : .primary
    }

    /// SQLite: a connection with `PRAGMA query_only` set is a read-only primary.
    public static let sqlite = RoleDetector { connection throws(SQLError) in
        isOn(try await connection.query("PRAGMA query_only")[0][0]) ? .readOnlyPrimary : .primary
    }

    /// Every node is a primary (for backends without roles).
    public static let alwaysPrimary = RoleDetector { _ throws(SQLError) in .primary }

    /// The detector for a driver's `SQLDriver.name`: `postgres`, `mariadb`
    /// (also `mysql`) and `sqlite`; any other name gets ``alwaysPrimary``.
    public static func forDriver(named name: String) -> RoleDetector {
        switch name {
        case "postgres", "postgresql": .postgres
        case "mariadb", "mysql": .mariadb
        case "sqlite": .sqlite
        default: .alwaysPrimary
        }
    }

    private static func settings(_ connection: any SQLConnection, _ sql: String) async throws(SQLError) -> [String: SQLValue] {
        var values: [String: SQLValue] = [:]
        for row in try await connection.query(sql) where row.values.count >= 2 {
            values[row[0].displayText.lowercased()] = row[1]
        }
        return values
    }

    private static func isOn(_ value: SQLValue) -> Bool {
        switch value {
        case .bool(let flag): flag
        case .integer(let number): number != 0
        default: ["on", "1", "true", "t", "yes"].contains(value.displayText.lowercased())
        }
    }
}

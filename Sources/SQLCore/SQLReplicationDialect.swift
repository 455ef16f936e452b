/// A driver that can tell, over one of its connections, what its server is in a replicated
/// cluster: the role it plays, and how far behind the cluster's writes it is.
///
/// The backends adopt it with their own SQL (PostgreSQL's recovery functions and WAL
/// positions, MariaDB's `read_only` and Galera status, SQLite's `query_only`). ClusterSQL's
/// `ClusterDriver` reads every node through it, so a driver of your own that adopts it gets
/// roles and replication lag in a cluster with nothing more to configure.
public protocol SQLReplicationDialect: SQLDriver {
    /// The role of the server `connection` is open to.
    func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole

    /// How far the server `connection` is open to is behind, and its replication position.
    ///
    /// - Parameters:
    ///   - connection: a connection to the server.
    ///   - role: the role last read (`NodeRole.unknown` asks for a position only: the server
    ///     says whether it is a primary).
    ///   - primaryPosition: the largest write position last read on a primary of the cluster, if
    ///     any, for backends that compare positions.
    func readReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError)
        -> ReplicationReading
}

extension SQLReplicationDialect {
    /// No replication to measure: no figure, and no position.
    public func readReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError)
        -> ReplicationReading
    {
        ReplicationReading(lag: nil)
    }
}

extension SQLDriver {
    /// The role this driver's dialect reads on `connection`, or a primary when it adopts no
    /// ``SQLReplicationDialect``: how a driver that wraps another forwards the protocol.
    package func dialectRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
        guard let dialect = self as? any SQLReplicationDialect else { return .primary }
        return try await dialect.readRole(on: connection)
    }

    /// The replication reading of this driver's dialect on `connection`, or no figure when it
    /// adopts no ``SQLReplicationDialect``.
    package func dialectReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError) -> ReplicationReading {
        guard let dialect = self as? any SQLReplicationDialect else { return ReplicationReading(lag: nil) }
        return try await dialect.readReplication(on: connection, role: role, primaryPosition: primaryPosition)
    }
}

extension SQLValue {
    /// Whether a server setting reads as on (`ON`, `1`, `true`, `t`, `yes`, a true boolean).
    package var isOn: Bool {
        switch self {
        case .bool(let flag): flag
        case .integer(let number): number != 0
        default: ["on", "1", "true", "t", "yes"].contains(displayText.lowercased())
        }
    }

    /// The value as an integer, from an integer or its text; `nil` for null or other text.
    package var looseInteger: Int64? {
        switch self {
        case .integer(let number): number
        case .null: nil
        default: Int64(displayText)
        }
    }

    /// The value as a double, from a number or its text; `nil` for null or other text.
    package var looseDouble: Double? {
        switch self {
        case .double(let number): number
        case .integer(let number): Double(number)
        case .null: nil
        default: Double(displayText)
        }
    }
}

import SQLCore

/// Measures a node's replication lag over one of its connections, in the background checks,
/// after its role was read.
///
/// A node's probe is its driver's own (``init(for:)``: the backends adopt
/// `SQLReplicationDialect`); pass another to
/// ``ClusterDriver/addNode(name:driver:dsn:roleDetector:replicationProbe:)`` for other conventions.
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

    /// The probe of `driver`: its `SQLReplicationDialect.readReplication(on:role:primaryPosition:)`
    /// when it adopts the protocol (PostgreSQL, MariaDB and MySQL, and drivers that wrap them),
    /// else ``disabled``.
    public init(for driver: any SQLDriver) {
        if let dialect = driver as? any SQLReplicationDialect {
            self.init { connection, role, primaryPosition throws(SQLError) in
                try await dialect.readReplication(on: connection, role: role, primaryPosition: primaryPosition)
            }
        } else {
            self = .disabled
        }
    }

    /// Nothing to measure (SQLite, backends without replication): no figure, and no limit holds against the node.
    public static let disabled = ReplicationProbe { _, _, _ throws(SQLError) in ReplicationReading(lag: nil) }
}

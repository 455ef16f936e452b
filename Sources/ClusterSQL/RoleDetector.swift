import SQLCore

/// Finds out a node's role over one of its connections.
///
/// A node's detector is its driver's own (``init(for:)``: the backends adopt
/// `SQLReplicationDialect`); pass another to
/// ``ClusterDriver/addNode(name:driver:dsn:roleDetector:replicationProbe:)``
/// for other conventions.
public struct RoleDetector: Sendable {
    /// Runs the role queries on `connection`.
    let detect: @Sendable (_ connection: any SQLConnection) async throws(SQLError) -> NodeRole

    /// Creates a detector from a closure.
    public init(detect: @escaping @Sendable (_ connection: any SQLConnection) async throws(SQLError) -> NodeRole) {
        self.detect = detect
    }

    /// The detector of `driver`: its `SQLReplicationDialect.readRole(on:)` when it adopts the
    /// protocol (PostgreSQL, MariaDB and MySQL, SQLite, and drivers that wrap them), else
    /// ``alwaysPrimary``.
    public init(for driver: any SQLDriver) {
        if let dialect = driver as? any SQLReplicationDialect {
            self.init { connection throws(SQLError) in try await dialect.readRole(on: connection) }
        } else {
            self = .alwaysPrimary
        }
    }

    /// Every node is a primary (for backends without roles).
    public static let alwaysPrimary = RoleDetector { _ throws(SQLError) in .primary }
}

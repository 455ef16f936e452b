import ConnectionKit

/// What a node can serve, as last detected.
public enum NodeRole: String, Sendable, Codable, Hashable, CaseIterable {
    /// Not checked yet, or the last check failed.
    case unknown
    /// Accepts writes: a PostgreSQL primary, a MariaDB server without
    /// `read_only`, a synced Galera node, a SQLite file opened for writing.
    case primary
    /// A primary whose sessions are read-only (PostgreSQL
    /// `default_transaction_read_only`, SQLite `mode=ro` or `query_only`).
    case readOnlyPrimary = "read-only-primary"
    /// A replica: a PostgreSQL hot standby, a MariaDB server with `read_only`.
    case standby
    /// Up but not serving: a Galera node that is not Synced or not ready.
    case notReady = "not-ready"

    /// Whether the node accepts writes.
    public var isWritable: Bool { self == .primary }
}

/// How far a node is behind the cluster's writes, as its last background check measured it
/// (ClusterSQL's `ClusterDriver.run()` or `checkAll()`). Each backend fills what it can tell.
public struct ReplicationLag: Sendable, Codable, Hashable {
    /// How far behind in time, in seconds: 0 when the node has applied every write the cluster
    /// knows of; `nil` when the backend does not measure time (Galera). A PostgreSQL standby that
    /// is behind reports the age of the last transaction it replayed (`pg_last_xact_replay_timestamp()`),
    /// so the server clocks must agree; a MariaDB/MySQL replica reports `Seconds_Behind_Master`.
    public var seconds: Double?
    /// WAL bytes the node has not replayed yet (PostgreSQL: the primary's last known
    /// `pg_current_wal_lsn()`, or else the standby's received WAL, minus `pg_last_wal_replay_lsn()`).
    public var bytesBehind: Int64?
    /// Write sets received and not applied yet (Galera's `wsrep_local_recv_queue`).
    public var transactionsBehind: Int?
    /// Behind by an amount the node cannot tell (a replica whose replication is stopped, a
    /// standby that has replayed nothing since it started while WAL waits): over every limit.
    public var isBehindByUnknown: Bool

    /// A lag of these figures.
    public init(seconds: Double? = nil, bytesBehind: Int64? = nil, transactionsBehind: Int? = nil, isBehindByUnknown: Bool = false) {
        self.seconds = seconds
        self.bytesBehind = bytesBehind
        self.transactionsBehind = transactionsBehind
        self.isBehindByUnknown = isBehindByUnknown
    }

    /// No lag at all: a primary, or a replica that has applied every write the cluster knows of.
    public static let caughtUp = ReplicationLag(seconds: 0)
}

extension ReplicationLag: CustomStringConvertible {
    /// The figures in a few words, as `clustersql check` shows them: `0 ms`, `3200 ms, 81920 bytes`,
    /// `2 transactions`, `unknown (stopped)`.
    public var description: String {
        if isBehindByUnknown { return "unknown (stopped)" }
        var parts: [String] = []
        if let seconds { parts.append(formatted(.seconds(min(seconds, 1e9)))) }
        if let bytesBehind, bytesBehind > 0 { parts.append("\(bytesBehind) bytes") }
        if let transactionsBehind { parts.append("\(transactionsBehind) transaction\(transactionsBehind == 1 ? "" : "s")") }
        return parts.isEmpty ? "-" : parts.joined(separator: ", ")
    }
}

/// What a node said of its replication: its position and how far it is behind.
public struct ReplicationReading: Sendable, Hashable {
    /// The node's replication position: a primary's write position (PostgreSQL: its WAL LSN as
    /// a byte offset), a standby's replayed position; `nil` when the backend has none.
    public var position: Int64?
    /// How far the node is behind (``ReplicationLag/caughtUp`` for a primary); `nil` when the node does
    /// not replicate (SQLite), which statistics show as no figure at all.
    public var lag: ReplicationLag?

    /// A reading of these figures.
    public init(position: Int64? = nil, lag: ReplicationLag?) {
        self.position = position
        self.lag = lag
    }
}

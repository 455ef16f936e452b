import ConnectionKit

/// How far a node is behind the cluster's writes, as its last background check measured it
/// (``ClusterDriver/run()`` or ``ClusterDriver/checkAll()``). Each backend fills what it can tell.
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

/// The most a node may lag and still be chosen: for a whole cluster
/// (``ClusterDriverConfiguration/replicationLimits``) or one open (the DSN's
/// `max_replication_lag` and `max_transactions_behind`).
public struct ReplicationLimits: Sendable, Codable, Hashable {
    /// The longest time behind (``ReplicationLag/seconds``); `nil`: no limit.
    public var maxLag: Duration?
    /// The most write sets received and not applied (``ReplicationLag/transactionsBehind``); `nil`: no limit.
    public var maxTransactionsBehind: Int?

    /// Limits of these values (`nil`: that measure is not limited).
    public init(maxLag: Duration? = nil, maxTransactionsBehind: Int? = nil) {
        self.maxLag = maxLag
        self.maxTransactionsBehind = maxTransactionsBehind
    }

    /// No limit: every node is fresh enough.
    public static let unlimited = ReplicationLimits()

    /// Whether any limit is set.
    var isLimited: Bool { maxLag != nil || maxTransactionsBehind != nil }

    /// Whether a node that lags by `lag` is within these limits (the hot path's check: no message).
    @inline(__always)
    func admits(_ lag: ReplicationLag?) -> Bool {
        guard isLimited, let lag else { return true }
        if lag.isBehindByUnknown { return false }
        if let maxLag, let seconds = lag.seconds, seconds > maxLag.inSeconds { return false }
        if let maxTransactionsBehind, let behind = lag.transactionsBehind, behind > maxTransactionsBehind { return false }
        return true
    }

    /// Why a node that lags by `lag` is over these limits, or `nil` when it is within them. A node
    /// not measured yet (`nil`) is within them: the limits hold from the node's first check.
    package func violation(by lag: ReplicationLag?) -> String? {
        guard isLimited, let lag else { return nil }
        if lag.isBehindByUnknown { return "behind by an unknown amount (replication stopped or nothing replayed yet)" }
        if let maxLag, let seconds = lag.seconds, seconds > maxLag.inSeconds {
            return "\(formatted(.seconds(min(seconds, 1e9)))) behind (limit \(formatted(maxLag)))"
        }
        if let maxTransactionsBehind, let behind = lag.transactionsBehind, behind > maxTransactionsBehind {
            return "\(behind) transaction(s) behind (limit \(maxTransactionsBehind))"
        }
        return nil
    }
}

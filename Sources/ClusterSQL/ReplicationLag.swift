import ConnectionKit
import SQLCore

/// The most a node may lag and still be chosen: for a whole cluster
/// (``ClusterDriverConfiguration/replicationLimits``) or one open (the DSN's
/// `max_replication_lag` and `max_transactions_behind`).
public struct ReplicationLimits: Sendable, Codable, Hashable {
    /// The longest time behind (`ReplicationLag.seconds`); `nil`: no limit.
    public var maxLag: Duration?
    /// The most write sets received and not applied (`ReplicationLag.transactionsBehind`); `nil`: no limit.
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

import ConnectionKit
import SQLCore

/// A point in a cluster's write history (PostgreSQL: a WAL position in bytes; Galera: a write-set
/// seqno): a read that carries it is served only by a node that has applied it.
///
/// Its text form (``description``) is a plain number, so it can travel to a later request (a
/// cookie, a header) and come back through ``init(_:)``.
public struct ReplicationToken: Sendable, Hashable, Codable, Comparable, LosslessStringConvertible {
    /// The position.
    public let position: Int64

    /// A token for `position`.
    public init(position: Int64) {
        self.position = position
    }

    /// The token a ``description`` names; `nil` for any other text.
    public init?(_ description: String) {
        guard let position = Int64(description), position >= 0 else { return nil }
        self.position = position
    }

    /// The position as a plain number.
    public var description: String { String(position) }

    /// Tokens order by position.
    public static func < (lhs: ReplicationToken, rhs: ReplicationToken) -> Bool { lhs.position < rhs.position }
}

/// Read-your-writes for one user's session, across connections, pools and requests.
///
/// Inside ``ClusterDriver/readingYourWrites(_:_:)``, every write that commits
/// through a cluster connection (a statement outside a transaction that is not
/// a plain read, or a `COMMIT`) reads its node's write position into the session
/// (one more round trip per write), and every statement outside a transaction,
/// and every `BEGIN`, first makes sure its node has applied the session's
/// ``token``: at once when the checks last saw it there, else by polling the
/// node (PostgreSQL: `pg_last_wal_replay_lsn()`) for up to
/// ``ClusterDriverConfiguration/readYourWritesTimeout``, and then by moving that
/// statement (and the transaction it begins) to a primary.
public final class ReadYourWritesSession: Sendable {
    private let latest: Locked<ReplicationToken?>

    /// A session whose reads must see at least `token` (one carried from an earlier request), or nothing yet.
    public init(after token: ReplicationToken? = nil) {
        latest = Locked(token)
    }

    /// The newest write position the session must see; `nil` before its first write.
    public var token: ReplicationToken? { latest.withLock { $0 } }

    /// Moves the session's token forward to `token` (never back).
    public func advance(to token: ReplicationToken) {
        latest.withLock { $0 = max($0 ?? token, token) }
    }
}

extension ClusterDriver {
    /// The session the current task reads its writes in, if any.
    @TaskLocal static var readYourWritesSession: ReadYourWritesSession?

    /// Runs `body` with every cluster statement in it reading its own writes through `session`
    /// (see ``ReadYourWritesSession``).
    public static func readingYourWrites<T>(_ session: ReadYourWritesSession, _ body: () async throws -> T) async rethrows -> T {
        try await $readYourWritesSession.withValue(session) { try await body() }
    }
}

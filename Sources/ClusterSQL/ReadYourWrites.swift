import ConnectionKit
import Foundation
import SQLCore

/// Points in clusters' write histories, one per cluster by name (PostgreSQL: a WAL position in
/// bytes; Galera: a write-set seqno): a read that carries it is served only by a node that has
/// applied its cluster's position.
///
/// Its text form (``description``) is `name=position` pairs separated by commas (names
/// percent-encoded), so it can travel to a later request (a cookie, a header) and come back
/// through ``init(_:)``.
public struct ReplicationToken: Sendable, Hashable, Codable, LosslessStringConvertible {
    /// The position to have applied, by cluster name.
    public let positions: [String: Int64]

    /// A token of these positions.
    public init(positions: [String: Int64]) {
        self.positions = positions
    }

    /// The token a ``description`` names; `nil` for any other text.
    public init?(_ description: String) {
        var positions: [String: Int64] = [:]
        for pair in description.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let name = String(parts[0]).removingPercentEncoding, !name.isEmpty,
                let position = Int64(parts[1]), position >= 0
            else { return nil }
            positions[name] = position
        }
        guard !positions.isEmpty else { return nil }
        self.positions = positions
    }

    /// `name=position` pairs, sorted by name.
    public var description: String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        return positions.keys.sorted().map { name in
            "\(name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name)=\(positions[name]!)"
        }.joined(separator: ",")
    }
}

/// Read-your-writes for one user's session, across connections, pools, clusters and requests.
///
/// Inside ``ClusterDriver/readingYourWrites(_:_:)``, every write that commits
/// through a cluster connection (a statement outside a transaction that is not
/// a plain read, or a `COMMIT`) reads its node's write position into the session,
/// under the cluster's name (one more round trip per write), and every statement
/// outside a transaction, and every `BEGIN`, first makes sure its node has applied
/// the session's position for its cluster: at once when the checks last saw it
/// there, else by polling the node (PostgreSQL: `pg_last_wal_replay_lsn()`) for up
/// to ``ClusterDriverConfiguration/readYourWritesTimeout``. A standby still behind
/// then gives the statement (and the transaction it begins) to a primary. What
/// cannot be met is not waited for twice: when even a primary is behind the
/// session's position (a token from elsewhere, writes lost in a failover), the
/// session's position for that cluster drops to the primary's, and the statement
/// runs. Backends without positions (SQLite, asynchronous MariaDB replicas) take no
/// position and wait for nothing.
public final class ReadYourWritesSession: Sendable {
    private let positions: Locked<[String: Int64]>

    /// A session whose reads must see at least `token` (one carried from an earlier request), or nothing yet.
    public init(after token: ReplicationToken? = nil) {
        positions = Locked(token?.positions ?? [:])
    }

    /// The positions the session's reads must see; `nil` before its first write.
    public var token: ReplicationToken? {
        let positions = positions.withLock { $0 }
        return positions.isEmpty ? nil : ReplicationToken(positions: positions)
    }

    /// The position reads of `cluster` must see.
    func position(for cluster: String) -> Int64? { positions.withLock { $0[cluster] } }

    /// Moves `cluster`'s position forward to `position` (never back).
    func advance(_ cluster: String, to position: Int64) {
        positions.withLock { $0[cluster] = max($0[cluster] ?? position, position) }
    }

    /// Lowers `cluster`'s position to `position`, what its primary has: more cannot be waited for.
    func settle(_ cluster: String, at position: Int64) {
        positions.withLock { $0[cluster] = min($0[cluster] ?? position, position) }
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

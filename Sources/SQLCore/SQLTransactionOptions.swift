import ConnectionKit

/// How a transaction isolates itself from concurrent ones (SQL's isolation levels).
public enum SQLIsolationLevel: String, Sendable, Hashable, CaseIterable, Codable {
    /// May see other transactions' uncommitted changes (PostgreSQL runs it as read committed).
    case readUncommitted
    /// Each statement sees what was committed when it began.
    case readCommitted
    /// The whole transaction sees one snapshot.
    case repeatableRead
    /// As if the transactions ran one after another; the database may refuse one
    /// with ``SQLError/Code/transactionConflict``, which `withTransaction` retries.
    case serializable

    /// The level in SQL (`REPEATABLE READ`).
    package var sql: String {
        switch self {
        case .readUncommitted: "READ UNCOMMITTED"
        case .readCommitted: "READ COMMITTED"
        case .repeatableRead: "REPEATABLE READ"
        case .serializable: "SERIALIZABLE"
        }
    }
}

/// How a transaction starts: its isolation level, whether it may write, and
/// PostgreSQL's `DEFERRABLE`.
///
/// Each backend says it its own way: PostgreSQL `BEGIN ISOLATION LEVEL … READ ONLY
/// DEFERRABLE`; MariaDB `SET TRANSACTION ISOLATION LEVEL …` (for the next
/// transaction only) then `START TRANSACTION READ ONLY`; SQLite, whose
/// transactions are always serializable, ignores the level and makes a read-only
/// transaction refuse writes (`PRAGMA query_only`, turned off again when it ends).
/// `deferrable` means something to PostgreSQL only (with `serializable` and
/// `readOnly`: wait for a snapshot that cannot conflict) and is ignored elsewhere.
public struct SQLTransactionOptions: Sendable, Hashable {
    /// The isolation level; `nil`: the session's (the server's default unless the session changed it).
    public var isolation: SQLIsolationLevel?
    /// Whether the transaction refuses writes.
    public var readOnly: Bool
    /// PostgreSQL's `DEFERRABLE`.
    public var deferrable: Bool

    /// Creates options; the defaults start a transaction as a bare `BEGIN` does.
    public init(isolation: SQLIsolationLevel? = nil, readOnly: Bool = false, deferrable: Bool = false) {
        self.isolation = isolation
        self.readOnly = readOnly
        self.deferrable = deferrable
    }

    /// Whether these are the defaults, which a bare `BEGIN` gives.
    package var isDefault: Bool { isolation == nil && !readOnly && !deferrable }

    /// PostgreSQL's `BEGIN` for these options.
    package var postgresBegin: String {
        var sql = "BEGIN"
        if let isolation { sql += " ISOLATION LEVEL " + isolation.sql }
        if readOnly { sql += " READ ONLY" }
        if deferrable { sql += " DEFERRABLE" }
        return sql
    }
}

/// When `withTransaction` runs a transaction again.
///
/// A transaction is run again (its whole closure, from a new `BEGIN`) only when
/// nothing of it can have been committed:
/// - the database refused it with ``SQLError/Code/transactionConflict`` (a
///   serialization failure or a deadlock, at any statement or at `COMMIT`:
///   the server undid the whole transaction);
/// - `BEGIN` failed with ``SQLError/Code/busy`` (SQLite's `BEGIN IMMEDIATE`
///   while another connection writes);
/// - on ``Database/withTransaction(_:retry:timeout:file:line:_:)`` only, the connection was lost
///   before `COMMIT` was sent (the server rolls back a transaction whose
///   connection ends; the next try runs on another pooled connection, which a
///   cluster driver may open on another node).
///
/// Never after `COMMIT` was sent and its answer was lost (the connection broke,
/// the task was cancelled, a timeout passed): that is
/// ``SQLError/Code/commitOutcomeUnknown``. Never after a timeout or a
/// cancellation elsewhere either, nor after an error the closure threw itself.
/// A nested `withTransaction` (a savepoint) never retries: its conflict ends the
/// outer transaction, which is the one run again.
///
/// The closure may run more than once: keep effects outside the database (a
/// message sent, a counter in memory) out of it, or make them idempotent.
/// DDL on MariaDB commits implicitly: a retried closure must not hold any.
public struct SQLTransactionRetry: Sendable, Hashable {
    /// How many times the closure may run in all (1: never again).
    public var maxAttempts: Int
    /// The pauses between tries (jittered, so that conflicting transactions drift apart).
    public var backoff: BackoffPolicy

    /// Creates a policy; `maxAttempts` below 1 counts as 1.
    public init(maxAttempts: Int, backoff: BackoffPolicy = SQLTransactionRetry.standard.backoff) {
        self.maxAttempts = max(1, maxAttempts)
        self.backoff = backoff
    }

    /// Up to 5 runs, pausing 5 ms doubling to 500 ms, ±50 %.
    public static let standard = SQLTransactionRetry(
        maxAttempts: 5, backoff: BackoffPolicy(initial: .milliseconds(5), multiplier: 2, maximum: .milliseconds(500), jitter: 0.5))

    /// One run: a conflict is thrown to the caller.
    public static let never = SQLTransactionRetry(maxAttempts: 1)
}

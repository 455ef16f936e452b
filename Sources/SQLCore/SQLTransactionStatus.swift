/// Where a connection stands with respect to transactions, as its backend
/// itself reports it after the last statement, read without a round trip
/// (libpq's `PQtransactionStatus`, MariaDB's `server_status`,
/// `sqlite3_get_autocommit`).
///
/// A pool reads it when a connection comes back: only an ``idle`` connection
/// is as clean as a new one and may be handed to the next borrower.
public enum SQLTransactionStatus: UInt8, Sendable, Hashable, Codable {
    /// No transaction is open, and every statement commits on its own.
    case idle
    /// A transaction is open (or, on MariaDB, `autocommit` is off, so the next
    /// statement would open one that nobody commits).
    case inTransaction
    /// A transaction is open and has failed: the server takes nothing but a
    /// rollback (PostgreSQL's `INERROR`).
    case failed
    /// Not known: a statement is running, or the connection is closed or broken.
    case unknown

    /// Whether a transaction (open, failed or possible) holds the connection: anything but ``idle``.
    package var holdsTransaction: Bool { self != .idle }
}

import SQLCore

/// How to open one SQLite database.
///
/// Build it directly, or parse a DSN with ``init(dsn:)``:
/// - `:memory:`: a private in-memory database (each connection has its own);
/// - `path/to/file.db` or `sqlite:path/to/file.db`, optionally followed by `?key=value&...`;
/// - `file:` URIs as SQLite understands them (`file:data.db?mode=ro`,
///   `file:shared?mode=memory&cache=shared`), handed to SQLite as they are.
///
/// Query keys read by ClusterSQL: `mode` (`ro`, `rw`, `rwc`, `memory`),
/// `busy_timeout` (milliseconds), `journal_mode` (`wal`, `delete`, `truncate`,
/// `persist`, `memory`, `off`), `synchronous` (`off`, `normal`, `full`, `extra`),
/// `foreign_keys` (`on`/`off`), `transaction_mode` (`deferred`, `immediate`,
/// `exclusive`), `statement_cache` (prepared statements kept per
/// connection). In `file:` URIs, SQLite's own keys (`cache`, `vfs`, `immutable`,
/// ...) pass through; elsewhere an unknown key is an error.
public struct SQLiteConfiguration: Sendable, Hashable {
    /// How the database file is opened.
    public enum OpenMode: String, Sendable, Hashable {
        /// Read only; writes fail with `SQLError.Code.readOnly`.
        case readOnly = "ro"
        /// Read and write an existing database.
        case readWrite = "rw"
        /// Read and write, creating the file when missing (the default).
        case readWriteCreate = "rwc"
    }

    /// How `BEGIN` takes locks (SQLite's `BEGIN DEFERRED|IMMEDIATE|EXCLUSIVE`).
    public enum TransactionMode: String, Sendable, Hashable {
        /// Locks on first read or write (SQLite's default).
        case deferred
        /// Takes the write lock at `BEGIN`, so a writer never fails to upgrade later.
        case immediate
        /// Takes an exclusive lock at `BEGIN`.
        case exclusive
    }

    /// The filename or `file:` URI passed to `sqlite3_open_v2`.
    public var filename: String
    /// Whether ``filename`` is a `file:` URI.
    public var isURI: Bool
    /// How the file is opened.
    public var mode: OpenMode = .readWriteCreate
    /// How long a statement waits for a lock held by another connection before failing with `SQLError.Code.busy`.
    public var busyTimeout: Duration = .seconds(5)
    /// The journal mode set at open; `nil` keeps the database's own. Defaults to WAL
    /// (readers never block the writer); in-memory databases ignore it.
    public var journalMode: String? = "wal"
    /// The `synchronous` pragma set at open; `nil` keeps SQLite's default.
    /// Defaults to `normal`, which is durable with WAL except on power loss.
    public var synchronous: String? = "normal"
    /// Whether foreign key constraints are enforced (SQLite's default is off; ours is on).
    public var foreignKeys: Bool = true
    /// How `SQLConnection.begin()` locks; DSN key `transaction_mode`.
    public var transactionMode: TransactionMode = .deferred
    /// How many prepared statements each connection keeps for reuse (at least 1).
    public var statementCacheCapacity: Int = 64

    /// A configuration for a database file at `path`.
    public init(path: String) {
        self.filename = path
        self.isURI = false
    }

    /// A private in-memory database.
    public static var inMemory: SQLiteConfiguration {
        var config = SQLiteConfiguration(path: ":memory:")
        config.journalMode = nil
        return config
    }

    /// Whether the database lives in memory only.
    public var isInMemory: Bool {
        filename == ":memory:" || filename.hasPrefix("file::memory:") || (isURI && filename.contains("mode=memory"))
    }

    /// Parses a DSN (see the type's documentation).
    ///
    /// - Throws: `SQLError.Code.invalidConfiguration` naming the offending key;
    ///   values are not echoed.
    public init(dsn: String) throws(SQLError) {
        var text = dsn.trimmingWhitespace()
        guard !text.isEmpty else { throw Self.invalid("the DSN is empty") }
        if text.hasPrefix("sqlite://") {
            text.removeFirst("sqlite://".count)
        } else if text.hasPrefix("sqlite:") {
            text.removeFirst("sqlite:".count)
        }
        let isURI = text.hasPrefix("file:")
        let (path, query) = Self.split(text)
        guard !path.isEmpty || isURI else { throw Self.invalid("the DSN names no database file") }
        self.init(path: isURI ? text : path)
        self.isURI = isURI
        if isInMemory { journalMode = nil }
        for (key, value) in query {
            try apply(key: key, value: value, passUnknown: isURI)
        }
    }

    private mutating func apply(key: String, value: String, passUnknown: Bool) throws(SQLError) {
        switch key {
        case "mode":
            if value == "memory" {
                journalMode = nil
            } else if let mode = OpenMode(rawValue: value) {
                self.mode = mode
            } else {
                throw Self.invalid("mode must be ro, rw, rwc or memory")
            }
        case "busy_timeout":
            guard let ms = Int(value), ms >= 0 else { throw Self.invalid("busy_timeout must be milliseconds (a whole number)") }
            busyTimeout = .milliseconds(ms)
        case "journal_mode":
            let allowed = ["wal", "delete", "truncate", "persist", "memory", "off"]
            guard allowed.contains(value.lowercased()) else {
                throw Self.invalid("journal_mode must be one of \(allowed.joined(separator: ", "))")
            }
            journalMode = value.lowercased()
        case "synchronous":
            let allowed = ["off", "normal", "full", "extra"]
            guard allowed.contains(value.lowercased()) else {
                throw Self.invalid("synchronous must be one of \(allowed.joined(separator: ", "))")
            }
            synchronous = value.lowercased()
        case "foreign_keys":
            switch value.lowercased() {
            case "on", "true", "1": foreignKeys = true
            case "off", "false", "0": foreignKeys = false
            default: throw Self.invalid("foreign_keys must be on or off")
            }
        case "transaction_mode":
            guard let mode = TransactionMode(rawValue: value.lowercased()) else {
                throw Self.invalid("transaction_mode must be deferred, immediate or exclusive")
            }
            transactionMode = mode
        case "statement_cache":
            guard let n = Int(value), n >= 1 else { throw Self.invalid("statement_cache must be a whole number of at least 1") }
            statementCacheCapacity = n
        default:
            guard passUnknown else { throw Self.invalid("unknown DSN key \(key)") }
        }
    }

    private static func split(_ text: String) -> (path: String, query: [(String, String)]) {
        guard let mark = text.firstIndex(of: "?") else { return (text, []) }
        let path = String(text[..<mark])
        let pairs = text[text.index(after: mark)...].split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        return (path, pairs)
    }

    private static func invalid(_ message: String) -> SQLError {
        SQLError(.invalidConfiguration, message: "invalid SQLite DSN: \(message)", backend: "sqlite")
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

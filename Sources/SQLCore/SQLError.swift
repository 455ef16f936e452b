import ConnectionKit

/// An error from a SQL driver, a connection or a statement.
///
/// Every backend maps its native failures onto one `SQLError`: the portable
/// ``code``, whether the failure concerns the connection or only the statement
/// (``kind``), and the backend's own figures (``nativeCode``, ``sqlState``).
///
/// ``description`` is safe to log: it never contains a password (backends
/// redact DSNs before building messages) and never a bind value (those are
/// never copied into errors). Server-supplied ``detail`` may quote row data and
/// is therefore kept out of ``description``.
public struct SQLError: Error, Sendable, CustomStringConvertible {
    /// What failed, portably across backends. Extensible: backends may define more codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name, used in descriptions and metrics.
        public let name: String
        /// The kind an error with this code has unless a backend says otherwise: every code
        /// says its kind where it is defined.
        public let defaultKind: Kind
        /// The code's own identity: equal codes are the same code.
        private let identity: ErrorCodeIdentity

        /// Creates a code, distinct from every other (even one of the same name); prefer the
        /// predefined static members.
        package init(_ name: String, defaultKind: Kind) {
            self.name = name
            self.defaultKind = defaultKind
            self.identity = ErrorCodeIdentity()
        }

        /// The code's name.
        public var description: String { name }

        // MARK: connection-class
        /// The connection could not be established (refused, unreachable, unknown host).
        public static let connectionFailed = Code("connectionFailed", defaultKind: .connection)
        /// An established connection broke (reset, closed by the server, gone away).
        public static let connectionLost = Code("connectionLost", defaultKind: .connection)
        /// The server rejected the credentials.
        public static let authenticationFailed = Code("authenticationFailed", defaultKind: .connection)
        /// The server refused a new connection because it has too many.
        public static let tooManyConnections = Code("tooManyConnections", defaultKind: .connection)
        /// A client-side deadline passed (connect, read or write).
        public static let timeout = Code("timeout", defaultKind: .connection)
        /// The connection was already closed by this client.
        public static let closed = Code("closed", defaultKind: .connection)
        /// The database could not be opened (missing file, unwritable folder).
        public static let cannotOpen = Code("cannotOpen", defaultKind: .connection)
        /// The database file is damaged.
        public static let corrupt = Code("corrupt", defaultKind: .connection)
        /// The file is not a database of this backend.
        public static let notADatabase = Code("notADatabase", defaultKind: .connection)
        /// The node is up but not ready to serve: a Galera node not yet synced
        /// ("WSREP has not yet prepared node", MySQL error 1047), a PostgreSQL
        /// server still starting or recovering (SQLSTATE 57P03). Set it aside and retry later.
        public static let nodeNotReady = Code("nodeNotReady", defaultKind: .connection)
        /// The server sent something the client could not understand.
        public static let protocolViolation = Code("protocolViolation", defaultKind: .connection)

        // MARK: statement-class
        /// The DSN or configuration is malformed.
        public static let invalidConfiguration = Code("invalidConfiguration", defaultKind: .statement)
        /// No driver is registered under the name asked for.
        public static let unknownDriver = Code("unknownDriver", defaultKind: .statement)
        /// A driver is already registered under that name.
        public static let duplicateDriver = Code("duplicateDriver", defaultKind: .statement)
        /// The SQL text does not parse, or names something that does not exist.
        public static let syntaxError = Code("syntaxError", defaultKind: .statement)
        /// A constraint (unique, foreign key, not null, check) rejected the change.
        public static let constraintViolation = Code("constraintViolation", defaultKind: .statement)
        /// The database is locked by another connection; retrying later may succeed.
        public static let busy = Code("busy", defaultKind: .statement)
        /// The database or node accepts no writes.
        public static let readOnly = Code("readOnly", defaultKind: .statement)
        /// The statement was cancelled by its task.
        public static let cancelled = Code("cancelled", defaultKind: .statement)
        /// The number of bound parameters does not match the placeholders.
        public static let parameterCountMismatch = Code("parameterCountMismatch", defaultKind: .statement)
        /// A value could not be converted to the Swift type asked for.
        public static let typeMismatch = Code("typeMismatch", defaultKind: .statement)
        /// A column name was not found in the result.
        public static let columnNotFound = Code("columnNotFound", defaultKind: .statement)
        /// A value or statement exceeds a size limit.
        public static let tooBig = Code("tooBig", defaultKind: .statement)
        /// The statement binds more parameters than the backend's protocol carries
        /// (65,535 for PostgreSQL and MariaDB, 32,766 for SQLite); refused before anything is sent.
        public static let tooManyParameters = Code("tooManyParameters", defaultKind: .statement)
        /// The API was used in a way the backend forbids (for example a statement after close).
        public static let misuse = Code("misuse", defaultKind: .statement)
        /// The transaction lost a conflict with another one and the server undid
        /// it: nothing it did was committed, and running it again may succeed
        /// (PostgreSQL's serialization failure 40001 and deadlock 40P01, MariaDB's
        /// deadlock 1213, which is also Galera's certification failure, and 1020).
        /// `withTransaction` runs the transaction again (``SQLTransactionRetry``).
        public static let transactionConflict = Code("transactionConflict", defaultKind: .statement)
        /// The connection was lost, or the call cancelled, while `COMMIT` was on its
        /// way: the transaction may or may not have been committed. Never retried;
        /// the ``SQLError/underlying`` error says what happened.
        public static let commitOutcomeUnknown = Code("commitOutcomeUnknown", defaultKind: .connection)
        /// The server reported an error no other code describes.
        public static let serverError = Code("serverError", defaultKind: .statement)
        /// No pooled connection became free within `DatabaseConfiguration.waitTimeout`,
        /// or the caller would have had to wait while the pool's `run()` was not running.
        /// Nothing was sent.
        public static let poolTimeout = Code("poolTimeout", defaultKind: .statement)
    }

    /// Whether a failure concerns the connection (and its node) or only the statement.
    ///
    /// Cluster code ejects a node on connection-class errors only: a syntax
    /// error never takes a node out of service; a reset connection does.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The connection is unusable; discard it and suspect its node.
        case connection
        /// Only this statement failed; the connection remains usable.
        case statement
    }

    /// The portable error code.
    public var code: Code
    /// Connection-class or statement-class.
    public var kind: Kind
    /// A human-readable message, free of passwords and bind values.
    public var message: String
    /// The backend's native error number (SQLite extended result code, MySQL errno).
    public var nativeCode: Int?
    /// The five-character SQLSTATE, where the backend has one.
    public var sqlState: String?
    /// Server-supplied detail and hints; may quote row data, so never part of ``description``.
    public var detail: String?
    /// The backend that produced the error, such as `sqlite` or `postgres`.
    public var backend: String?
    /// The cluster node the error came from, when known.
    public var node: String?
    /// The underlying error, when this one wraps another.
    public var underlying: (any Error & Sendable)?
    /// In a batch (``SQLConnection/execute(_:batch:)``), the index of the parameter row that failed.
    public var batchRow: Int?

    /// Creates an error. `kind` defaults to the code's default kind.
    public init(
        _ code: Code,
        kind: Kind? = nil,
        message: String,
        nativeCode: Int? = nil,
        sqlState: String? = nil,
        detail: String? = nil,
        backend: String? = nil,
        node: String? = nil,
        underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.kind = kind ?? code.defaultKind
        self.message = message
        self.nativeCode = nativeCode
        self.sqlState = sqlState
        self.detail = detail
        self.backend = backend
        self.node = node
        self.underlying = underlying
    }

    /// `true` when the connection that produced this error must be discarded.
    public var isConnectionError: Bool { kind == .connection }

    /// One line: backend, node, code, native code and SQLSTATE, message.
    public var description: String {
        var parts: [String] = []
        if let backend { parts.append(backend) }
        if let node { parts.append("node \(node)") }
        var codePart = code.name
        if let nativeCode { codePart += " \(nativeCode)" }
        if let sqlState { codePart += " SQLSTATE \(sqlState)" }
        parts.append(codePart)
        if let batchRow { parts.append("(batch row \(batchRow))") }
        return parts.joined(separator: " ") + ": " + message
    }

    /// A copy of this error attributed to row `index` of a batch.
    package func at(batchRow index: Int) -> SQLError {
        var copy = self
        copy.batchRow = index
        return copy
    }

    /// A copy of this error attributed to a cluster node.
    package func on(node: String) -> SQLError {
        var copy = self
        copy.node = node
        return copy
    }
}

extension SQLError {
    /// Throws ``Code/syntaxError`` when `sql` holds a NUL character: the C
    /// clients read SQL text as a C string and would run only what comes before
    /// it (`DELETE … WHERE id = 2\0 OR …` would lose its condition's end). Bound
    /// values may hold NULs; they are data.
    package static func refuseNUL(in sql: String, backend: String) throws(SQLError) {
        if sql.utf8.contains(0) {
            throw SQLError(.syntaxError, message: "the SQL text holds a NUL character", backend: backend)
        }
    }
}

import ConnectionKit

/// Everything that can go wrong talking to memcached, as one typed error.
///
/// ``isConnectionError`` tells the kinds apart: an answer about the item
/// (not stored, exists, not found) or a request refused before any I/O
/// (malformed key, too large) leaves the connection usable and says nothing
/// about the server's health; a timeout, a reset or garbage does. Messages name
/// the server, never a key's or a value's bytes.
public struct MemcachedError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code's name.
        public let name: String
        /// Whether an error with this code concerns the connection: every code says so where
        /// it is defined.
        let isConnectionClass: Bool
        /// The code's own identity: equal codes are the same code.
        private let identity: ErrorCodeIdentity

        init(_ name: String, connectionClass: Bool) {
            self.name = name
            self.isConnectionClass = connectionClass
            self.identity = ErrorCodeIdentity()
        }

        /// The name.
        public var description: String { name }

        /// A conditional store did not happen (`NS`: add of an existing key, replace or append of a missing one).
        public static let notStored = Code("notStored", connectionClass: false)
        /// A compare-and-swap found another version of the item (`EX`).
        public static let exists = Code("exists", connectionClass: false)
        /// The item is not there (`NF`: delete, arithmetic or CAS on a missing key).
        public static let notFound = Code("notFound", connectionClass: false)
        /// The key is empty, longer than 250 bytes, or holds spaces or control characters; nothing was sent.
        public static let malformedKey = Code("malformedKey", connectionClass: false)
        /// The value is larger than the item size limit; nothing was sent.
        public static let tooLarge = Code("tooLarge", connectionClass: false)
        /// The server answered `SERVER_ERROR` (out of memory, item too large for it...).
        public static let server = Code("server", connectionClass: false)
        /// The server answered `CLIENT_ERROR` or `ERROR`: it did not understand the request.
        public static let client = Code("client", connectionClass: false)
        /// The server sent bytes that are not the protocol, or break the decoder's limits.
        public static let protocolViolation = Code("protocolViolation", connectionClass: true)
        /// The TCP connection could not be made (refused, unreachable, unknown host).
        public static let connectFailed = Code("connectFailed", connectionClass: true)
        /// TLS failed: the server's certificate is not trusted or does not name the host, the
        /// server refused our client certificate (or wanted one), or it does not speak TLS.
        public static let tlsFailed = Code("tlsFailed", connectionClass: true)
        /// No connection within the connect timeout.
        public static let connectTimeout = Code("connectTimeout", connectionClass: true)
        /// No reply within the read timeout.
        public static let readTimeout = Code("readTimeout", connectionClass: true)
        /// The socket refused our bytes for longer than the write timeout.
        public static let writeTimeout = Code("writeTimeout", connectionClass: true)
        /// The connection closed or reset, possibly with requests pending, or was closed by us.
        public static let connectionLost = Code("connectionLost", connectionClass: true)
        /// The server is taken as down: the call returned at once, without I/O.
        public static let unavailable = Code("unavailable", connectionClass: false)
        /// The client was closed (`close()`): the call did not run. Says nothing of the server.
        public static let clientClosed = Code("clientClosed", connectionClass: false)
        /// A malformed setting.
        public static let invalidConfiguration = Code("invalidConfiguration", connectionClass: false)
        /// The calling task was cancelled: the request was not written, or it was and may have
        /// run, its reply dropped when it comes. The connection stays usable.
        public static let cancelled = Code("cancelled", connectionClass: false)
    }

    /// What kind of failure.
    public var code: Code
    /// What went wrong (the server's text for `SERVER_ERROR` and `CLIENT_ERROR`).
    public var message: String
    /// `host:port` of the server, when known.
    public var server: String

    /// Creates an error.
    public init(_ code: Code, message: String, server: String = "") {
        self.code = code
        self.message = message
        self.server = server
    }

    /// Whether the connection that produced this error must not be used again,
    /// and the failure counts against the server's health.
    public var isConnectionError: Bool { code.isConnectionClass }

    /// `memcached 127.0.0.1:11211: notStored: ...`.
    public var description: String {
        "memcached\(server.isEmpty ? "" : " \(server)"): \(code): \(message)"
    }

    func at(_ server: String) -> MemcachedError {
        var copy = self
        if copy.server.isEmpty { copy.server = server }
        return copy
    }
}

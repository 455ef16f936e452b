import ConnectionKit
import RESP

/// Everything that can go wrong talking to Redis, as one typed error.
///
/// ``isConnectionError`` tells the two kinds apart: a server error reply
/// (`WRONGTYPE`, `READONLY`, `MOVED`...) leaves the connection usable; a
/// timeout, a reset, a decoding error or a refused connection does not, and a
/// pool never hands such a connection out again. Messages name the endpoint
/// and the command's name, never its arguments (AUTH's password among them).
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
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

        /// The server answered with an error reply; ``RedisError/prefix`` holds its first word.
        public static let server = Code("server", connectionClass: false)
        /// The TCP connection could not be made (refused, unreachable, unknown host).
        public static let connectFailed = Code("connectFailed", connectionClass: true)
        /// TLS failed: the server's certificate is not trusted or does not name the host, the
        /// server refused our client certificate (or wanted one), or it does not speak TLS.
        public static let tlsFailed = Code("tlsFailed", connectionClass: true)
        /// Connecting and the handshake took longer than ``RedisConfiguration/connectTimeout``.
        public static let connectTimeout = Code("connectTimeout", connectionClass: true)
        /// No reply within ``RedisConfiguration/readTimeout``.
        public static let readTimeout = Code("readTimeout", connectionClass: true)
        /// The socket refused our bytes for longer than ``RedisConfiguration/writeTimeout``.
        public static let writeTimeout = Code("writeTimeout", connectionClass: true)
        /// The connection closed or reset (possibly with commands pending), or was closed by us.
        public static let connectionClosed = Code("connectionClosed", connectionClass: true)
        /// The server sent bytes that are not RESP, or break the decoder's limits.
        public static let protocolViolation = Code("protocolViolation", connectionClass: true)
        /// A reply of a type the command cannot have (for example an integer to GET).
        public static let unexpectedReply = Code("unexpectedReply", connectionClass: false)
        /// No pooled connection came free within the pool's get timeout.
        public static let poolTimeout = Code("poolTimeout", connectionClass: false)
        /// The pool is closed, not running when it would have to wait, or the waiting task was cancelled.
        public static let poolUnavailable = Code("poolUnavailable", connectionClass: false)
        /// A malformed URL or setting.
        public static let invalidConfiguration = Code("invalidConfiguration", connectionClass: false)
        /// No sentinel could be reached (refused, timed out, or it refused our credentials).
        public static let sentinelsUnreachable = Code("sentinelsUnreachable", connectionClass: false)
        /// The sentinels that answered do not know the master name.
        public static let masterUnknown = Code("masterUnknown", connectionClass: false)
        /// No master was verified within the wait: a failover is under way, or
        /// the address the sentinels name does not answer as a master (yet).
        public static let failoverInProgress = Code("failoverInProgress", connectionClass: false)
        /// No replica passed the checks and falling back to the master is off.
        public static let noReplicaAvailable = Code("noReplicaAvailable", connectionClass: false)
        /// The write succeeded on the master but fewer replicas than asked acknowledged it within the `WAIT` timeout.
        public static let notDurable = Code("notDurable", connectionClass: false)
        /// The client was closed.
        public static let clientClosed = Code("clientClosed", connectionClass: false)
        /// The API was used in a way that cannot work, and nothing was sent: a command that
        /// changes its connection's session (`MULTI`, `SELECT`...) where each command may run on
        /// another connection.
        public static let misuse = Code("misuse", connectionClass: false)
        /// A command on a ``SentinelLease`` borrowed from a master the client has left since:
        /// refused before anything was sent (the old master may be demoted at any moment, and
        /// what it acknowledged lost); borrow again.
        public static let masterChanged = Code("masterChanged", connectionClass: false)
        /// The calling task was cancelled: the command was not written, or it was and may have
        /// run, its reply dropped when it comes. The connection stays usable.
        public static let cancelled = Code("cancelled", connectionClass: false)
    }

    /// What kind of failure.
    public var code: Code
    /// For ``Code/server``, the reply's first word: `ERR`, `WRONGTYPE`, `NOAUTH`, `WRONGPASS`, `MOVED`...; empty otherwise.
    public var prefix: String
    /// The server's text, or what went wrong.
    public var message: String
    /// `host:port` of the server, when known.
    public var endpoint: String
    /// The name of the command that failed (`GET`, `AUTH`...), when known; never its arguments.
    public var command: String
    /// Whether the error came from talking to Sentinel rather than to a data node.
    public var fromSentinel: Bool = false

    /// Creates an error.
    public init(_ code: Code, message: String, prefix: String = "", endpoint: String = "", command: String = "") {
        self.code = code
        self.message = message
        self.prefix = prefix
        self.endpoint = endpoint
        self.command = command
    }

    /// An error reply, split into its prefix and the rest.
    package static func serverReply(_ text: String, endpoint: String = "", command: String = "") -> RedisError {
        let prefix = text.prefix { $0 != " " }
        return RedisError(.server, message: text, prefix: String(prefix), endpoint: endpoint, command: command)
    }

    static func invalidConfiguration(_ message: String) -> RedisError {
        RedisError(.invalidConfiguration, message: message)
    }

    /// Whether the connection that produced this error must not be used again.
    public var isConnectionError: Bool { code.isConnectionClass }

    /// `redis 127.0.0.1:6379 GET: WRONGTYPE Operation against a key...`.
    public var description: String {
        var head = fromSentinel ? "redis sentinel" : "redis"
        if !endpoint.isEmpty { head += " \(endpoint)" }
        if !command.isEmpty { head += " \(command)" }
        return code == .server ? "\(head): \(message)" : "\(head): \(code): \(message)"
    }

    func at(_ endpoint: String, command: String? = nil) -> RedisError {
        var copy = self
        if copy.endpoint.isEmpty { copy.endpoint = endpoint }
        if let command, copy.command.isEmpty { copy.command = command }
        return copy
    }
}

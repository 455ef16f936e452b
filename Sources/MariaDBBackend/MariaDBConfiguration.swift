import Foundation
import SQLCore

/// How to reach one MariaDB or MySQL server.
///
/// Two DSN forms are accepted:
/// - a URL: `mysql://user:password@host:port/db?tls=true` (also `mariadb://`;
///   user and password may be percent-encoded; `[::1]` for IPv6);
/// - the form of Go's MySQL driver:
///   `user:password@tcp(host:port)/db?param=value` or `user@unix(/path/to.sock)/db`.
///
/// Parameters (both forms): `tls` (`false` the default, `preferred`,
/// `skip-verify` / `required`: encrypted without checking the certificate,
/// `true` / `verify-identity`: encrypted, certificate and host name checked),
/// `tls-ca` (a CA file for verification), `timeout` (connect deadline, Go
/// duration such as `5s` or `500ms`), `readTimeout` (the query deadline),
/// `charset` (default `utf8mb4`), `socket` (a Unix socket path), `parseTime`
/// (accepted for Go DSNs; dates are always parsed), `tcpUserTimeout` (how long
/// the kernel keeps a connection whose data the server does not acknowledge,
/// with TCP keepalives; default `30s`, `0` off), `livenessCheck` (see
/// ``livenessCheckAfter``; default `10s`, `0` off), `multiStatements` (see
/// ``multiStatements``; default `false`). Anything else is an error:
/// a typo must not be ignored silently.
public struct MariaDBConfiguration: Sendable {
    /// TLS for the connection.
    public enum TLSMode: Sendable, Equatable {
        /// Plain TCP.
        case disabled
        /// TLS when the server offers it, plain otherwise.
        case preferred
        /// TLS required; the certificate is not checked.
        case required
        /// TLS required; the certificate must chain to ``MariaDBConfiguration/tlsCertificateAuthority``
        /// (or the system roots) and name the host.
        case verifyIdentity
    }

    /// The server's host name or address.
    public var host = "127.0.0.1"
    /// The server's TCP port.
    public var port = 3306
    /// A Unix socket path, used instead of TCP when set.
    public var unixSocket: String?
    /// The user name.
    public var user = ""
    /// The password; never shown in an error, a log line or a description.
    var password: String?
    /// The default database.
    public var database: String?
    /// TLS mode.
    public var tls = TLSMode.disabled
    /// A PEM file of certificate authorities for ``TLSMode/verifyIdentity``.
    public var tlsCertificateAuthority: String?
    /// The connection character set.
    public var charset = "utf8mb4"
    /// How long connecting may take in all (TCP, TLS, authentication).
    public var connectTimeout: Duration = .seconds(10)
    /// How long a statement may wait for the server before the connection is
    /// given up as broken (client side; `nil`: no limit).
    public var queryTimeout: Duration?
    /// How long a statement waits without a byte from the server before the client
    /// asks, over a new connection, whether the server still answers (`nil`: never).
    /// A server that greets is only slow: the statement waits on, checking again
    /// after as long. One that does not within `ServerLiveness.checkTimeout` (5 s:
    /// stopped, wedged) fails the statement connection-class. Default 10 s.
    public var livenessCheckAfter: Duration? = .seconds(10)
    /// Whether a statement text may hold several statements on every call (the Go-MySQL DSN's
    /// `multiStatements=true`). Off, the default: only an `execute` without parameters (a script
    /// run on purpose) may, so that SQL text built by concatenation cannot have a second
    /// statement stacked onto a `query` (`SELECT …; DROP TABLE …` is a syntax error).
    public var multiStatements = false
    /// `TCP_USER_TIMEOUT` on the connection's socket, with TCP keepalives (a probe
    /// after 10 s idle, every 5 s, 3 unanswered): a dead peer or a black-holed
    /// network ends the connection within this bound (`nil`: neither; the
    /// system's defaults wait hours). Default 30 s.
    public var tcpUserTimeout: Duration? = .seconds(30)

    /// `host:port` (or the socket path), for messages.
    package var address: String { unixSocket ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)") }

    /// Parses a DSN in either form.
    ///
    /// - Throws: `SQLError.Code.invalidConfiguration` naming what is wrong;
    ///   the DSN and its values are never echoed.
    public init(
        dsn: String, connectTimeout: Duration = .seconds(10), queryTimeout: Duration? = nil,
        livenessCheckAfter: Duration? = .seconds(10)
    ) throws(SQLError) {
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.livenessCheckAfter = livenessCheckAfter
        let parts = try DSNParts(dsn)
        if let userInfo = parts.userInfo {
            let (user, password) = Substring(userInfo).splitOnce(":")
            self.user = try Self.decoded(user, what: "the user name")
            self.password = try password.map { p throws(SQLError) in try Self.decoded(p, what: "the password") }
        }
        if let socket = parts.socket {
            unixSocket = socket
        } else if let address = parts.address, !address.isEmpty {
            try setAddress(address)
        }
        if !parts.database.isEmpty { database = try Self.decoded(parts.database, what: "the database name") }
        for (key, value) in parts.parameters {
            // Not named: in a malformed DSN, the "parameter" may be a piece of the password.
            try apply(key, try Self.decoded(value, what: "a parameter value"))
        }
        if tls == .disabled, tlsCertificateAuthority != nil { tls = .verifyIdentity }
    }

    private mutating func setAddress(_ address: Substring) throws(SQLError) {
        var hostPart = address
        var portPart: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw Self.invalid("an IPv6 address lacks its ]") }
            let rest = hostPart[hostPart.index(after: close)...]
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
            if rest.hasPrefix(":") {
                portPart = rest.dropFirst()
            } else if !rest.isEmpty {
                throw Self.invalid("unexpected text after the IPv6 address")
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            portPart = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        if !hostPart.isEmpty { host = String(hostPart) }
        if let portPart {
            guard let value = Int(portPart), (1...65535).contains(value) else {
                throw Self.invalid("the port is not a number from 1 to 65535")
            }
            port = value
        }
    }

    private mutating func apply(_ key: String, _ value: String) throws(SQLError) {
        switch key {
        case "tls", "ssl-mode", "sslmode":
            switch value.lowercased() {
            case "false", "disabled", "disable": tls = .disabled
            case "preferred", "prefer": tls = .preferred
            case "skip-verify", "required", "require": tls = .required
            case "true", "verify-identity", "verify_identity", "verify-full": tls = .verifyIdentity
            default: throw Self.invalid("parameter \(key) must be false, preferred, skip-verify, required or true")
            }
        case "tls-ca", "ssl-ca", "sslrootcert": tlsCertificateAuthority = value
        case "timeout", "connect_timeout", "connectTimeout": connectTimeout = try Self.duration(value, key: key)
        case "readTimeout", "read_timeout": queryTimeout = try Self.duration(value, key: key)
        case "multiStatements", "multi_statements":
            guard let flag = Self.bool(value) else { throw Self.invalid("parameter multiStatements must be true or false") }
            multiStatements = flag
        case "livenessCheck", "liveness_check": livenessCheckAfter = value == "0" ? nil : try Self.duration(value, key: key)
        case "tcpUserTimeout", "tcp_user_timeout": tcpUserTimeout = value == "0" ? nil : try Self.duration(value, key: key)
        case "charset":
            guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw Self.invalid("parameter charset is not a character set name")
            }
            charset = value
        case "socket": unixSocket = value
        case "parseTime":
            guard ["true", "false", "1", "0"].contains(value.lowercased()) else {
                throw Self.invalid("parameter parseTime must be true or false")
            }
        default:
            // Not echoed: in a malformed DSN, the "parameter" may be a piece of the password.
            throw Self.invalid(
                "unknown parameter (known: tls, tls-ca, timeout, readTimeout, livenessCheck, tcpUserTimeout, multiStatements, charset, socket, parseTime)"
            )
        }
    }

    /// A Go duration (`1.5s`, `500ms`, `2m`) or a plain number of seconds.
    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "1": true
        case "false", "0": false
        default: nil
        }
    }

    static func duration(_ text: String, key: String) throws(SQLError) -> Duration {
        guard let duration = DurationText.parse(text) else {
            throw invalid("parameter \(key) is not a positive duration below 290 years such as 5s or 500ms")
        }
        return duration
    }

    static func decoded(_ text: Substring, what: String) throws(SQLError) -> String {
        guard let value = String(text).removingPercentEncoding else { throw invalid("\(what) has a malformed percent escape") }
        return value
    }

    static func invalid(_ reason: String) -> SQLError {
        SQLError(.invalidConfiguration, message: "invalid MariaDB DSN: \(reason)", backend: "mariadb")
    }
}

/// The pieces of a DSN before their values are checked.
struct DSNParts {
    var userInfo: Substring?
    var address: Substring?
    var socket: String?
    var database: Substring = ""
    var parameters: [(String, Substring)] = []

    init(_ dsn: String) throws(SQLError) {
        let text = Substring(dsn)
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw MariaDBConfiguration.invalid("a DSN contains no spaces")
        }
        let (main, query) = text.splitOnce("?")
        if let query {
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
                let (key, value) = pair.splitOnce("=")
                guard let value, !key.isEmpty else { throw MariaDBConfiguration.invalid("a parameter lacks its = value") }
                parameters.append((String(key), value))
            }
        }
        if let schemeEnd = main.range(of: "://") {
            let scheme = main[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "mysql" || scheme == "mariadb" else {
                throw MariaDBConfiguration.invalid("the scheme must be mysql:// or mariadb://")
            }
            var rest = main[schemeEnd.upperBound...]
            if let at = rest.lastIndex(of: "@") {  // a password may hold an unencoded / or @
                userInfo = rest[..<at]
                rest = rest[rest.index(after: at)...]
            }
            let (authority, path) = rest.splitOnce("/")
            address = authority
            database = path ?? ""
        } else {
            try parseGoForm(main)
        }
        guard !database.contains("/") else { throw MariaDBConfiguration.invalid("the database name contains a /") }
    }

    /// `[user[:password]@][tcp(host:port)|unix(path)]/db`.
    private mutating func parseGoForm(_ main: Substring) throws(SQLError) {
        guard let slash = main.lastIndex(of: "/") else {
            throw MariaDBConfiguration.invalid("expected mysql://user:password@host:port/db or user:password@tcp(host:port)/db")
        }
        database = main[main.index(after: slash)...]
        var head = main[..<slash]
        if let at = head.lastIndex(of: "@") {
            userInfo = head[..<at]
            head = head[head.index(after: at)...]
        }
        guard !head.isEmpty else { return }
        guard let open = head.firstIndex(of: "("), head.hasSuffix(")") else {
            throw MariaDBConfiguration.invalid("the address must be written tcp(host:port) or unix(path)")
        }
        let network = head[..<open]
        let inside = head[head.index(after: open)..<head.index(before: head.endIndex)]
        switch network {
        case "tcp", "tcp4", "tcp6": address = inside
        case "unix": socket = String(inside)
        default: throw MariaDBConfiguration.invalid("the network must be tcp or unix")
        }
    }
}

extension Substring {
    /// The text before the first `separator` and, when present, the text after it.
    func splitOnce(_ separator: Character) -> (Substring, Substring?) {
        guard let index = firstIndex(of: separator) else { return (self, nil) }
        return (self[..<index], self[self.index(after: index)...])
    }
}

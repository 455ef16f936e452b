import ConnectionKit
import Foundation
import NIOClientSupport
import NIOCore
import RESP

/// How to reach and set up one Redis server: address, credentials, database,
/// client name, protocol version, timeouts and decoder limits.
///
/// `description` never shows the password.
public struct RedisConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The server's host name or IP address.
    public var host: String
    /// The server's TCP port. Default 6379.
    public var port: Int
    /// The ACL user for `AUTH user password`; `nil` sends password-only `AUTH password`.
    public var username: String?
    /// The password; `nil` sends no `AUTH`.
    public var password: String?
    /// The database `SELECT`ed after connecting; 0 sends nothing.
    public var database: Int
    /// The name set with `CLIENT SETNAME` (seen in `CLIENT LIST`); `nil` sends nothing.
    public var clientName: String?
    /// `.resp3` sends `HELLO 3` (with the credentials and name in it) instead of AUTH and CLIENT SETNAME.
    public var protocolVersion: RedisProtocolVersion
    /// The longest wait for TCP connect plus the handshake (AUTH, HELLO, SELECT, SETNAME). Default 5 s.
    public var connectTimeout: Duration
    /// The longest wait for a reply, counted from the command's write; when it
    /// passes, the connection is closed (its replies would be out of step) and every
    /// pending command fails. `nil`: wait forever. Default 10 s.
    public var readTimeout: Duration?
    /// The longest time the socket may refuse our bytes (its send buffer full)
    /// before the connection is closed and every pending command fails. `nil`: wait forever. Default 10 s.
    public var writeTimeout: Duration?
    /// What a reply may be: the decoder rejects longer bulks, bigger aggregates and deeper nesting.
    public var limits: RESPDecoderLimits
    /// Where each command's span goes (`db.system.name` `redis`, the command's name, never its
    /// arguments). Default: the tracer bootstrapped when the configuration is made, if any.
    public var tracing: TracingConfiguration
    /// TLS for the connection (the server's `tls-port`); `nil`: plain TCP. A `rediss://` URL sets it to
    /// full verification against the system's roots.
    public var tls: ClientTLS?

    /// A configuration for `host:port` with the defaults above.
    public init(host: String = "127.0.0.1", port: Int = 6379) {
        self.host = host
        self.port = port
        self.username = nil
        self.password = nil
        self.database = 0
        self.clientName = nil
        self.protocolVersion = .resp2
        self.connectTimeout = .seconds(5)
        self.readTimeout = .seconds(10)
        self.writeTimeout = .seconds(10)
        self.limits = RESPDecoderLimits()
        self.tracing = TracingConfiguration()
        self.tls = nil
    }

    /// Parses `redis://[[user]:password@]host[:port][/database]` (the scheme is
    /// optional; IPv6 hosts go in brackets); a plain `host:port` works too.
    /// `rediss://` is the same over TLS, verified against the system's roots
    /// (set ``tls`` afterwards for your own roots or a client certificate).
    /// Anything malformed is a ``RedisError`` with code ``RedisError/Code/invalidConfiguration``
    /// whose message does not repeat the password.
    public init(url: String) throws(RedisError) {
        self.init()
        var rest = Substring(url)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            switch rest[..<colon] {
            case "redis": break
            case "rediss": tls = ClientTLS()
            default: throw .invalidConfiguration("the scheme must be redis:// or rediss://")
            }
            rest = rest[rest.index(colon, offsetBy: 3)...]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : try Self.percentDecoded(user, what: "user name")
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...], what: "password")
            } else if !credentials.isEmpty {
                password = try Self.percentDecoded(credentials, what: "password")
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { throw .invalidConfiguration("the database must be a number ≥ 0") }
                database = number
            }
        }
        let (parsedHost, parsedPort) = try Self.hostAndPort(rest)
        host = parsedHost
        if let parsedPort { port = parsedPort }
    }

    /// `redis://user:***@host:port/db` (`rediss://` with TLS), never the password.
    public var description: String {
        let user = username ?? ""
        let credentials = password == nil ? (user.isEmpty ? "" : "\(user)@") : "\(user):***@"
        return "\(tls == nil ? "redis" : "rediss")://\(credentials)\(endpoint)\(database == 0 ? "" : "/\(database)")"
    }

    /// `host:port` (IPv6 in brackets), for errors and logs.
    public var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static func hostAndPort(_ text: Substring) throws(RedisError) -> (String, Int?) {
        var host = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidConfiguration("an IPv6 host misses its closing ]") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidConfiguration("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty else { throw .invalidConfiguration("the host is missing") }
        // Nothing of the text is echoed: a malformed URL may hold a password in any part.
        let isBracketed = text.hasPrefix("[")
        guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0) || (isBracketed && ":%".contains($0))) })
        else {
            throw .invalidConfiguration("the host is not a host name or an IP address")
        }
        guard let portText else { return (String(host), nil) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw .invalidConfiguration("the port must be a number from 1 to 65535")
        }
        return (String(host), port)
    }

    private static func percentDecoded(_ text: Substring, what: String) throws(RedisError) -> String {
        guard let decoded = String(text).removingPercentEncoding else {
            throw .invalidConfiguration("the \(what) has a malformed %-escape")
        }
        return decoded
    }
}

/// The protocol version a connection speaks.
public enum RedisProtocolVersion: Int, Sendable, Hashable {
    /// RESP2, every server's default.
    case resp2 = 2
    /// RESP3, switched on with `HELLO 3` (Redis 6 and later): maps, sets, doubles, push messages.
    case resp3 = 3
}

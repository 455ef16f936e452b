import ConnectionKit
import NIOClientSupport

/// How to reach one memcached server and how long to wait for it.
public struct MemcachedServerConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The host name or IP address (also what the ketama ring hashes).
    public var host: String
    /// The TCP port. Default 11211.
    public var port: Int
    /// The server's share of the keys relative to the others (ketama weight). Default 1.
    public var weight: Int
    /// The longest wait for the TCP connection. Default 500 ms.
    public var connectTimeout: Duration
    /// The longest wait for a reply, counted from the request's write; when it passes
    /// the connection is closed and every pending request fails. Default 500 ms.
    public var readTimeout: Duration
    /// The longest time the socket may refuse our bytes. Default 500 ms.
    public var writeTimeout: Duration
    /// The largest value a write may carry; larger ones fail with ``MemcachedError/Code/tooLarge``
    /// before any I/O. Default 1 MiB, memcached's own default item size (`-I`).
    public var maxItemSize: Int
    /// What a reply may be.
    public var limits: MetaDecoderLimits
    /// Where each request's span goes (`db.system.name` `memcached`, the request's name such as
    /// `mg` or `ms`, never its key or value). Default: the tracer bootstrapped when the configuration
    /// is made, if any.
    public var tracing: TracingConfiguration
    /// TLS for the connections (memcached started with `-Z`); `nil`: plain TCP. The connect
    /// timeout covers the TLS handshake too.
    public var tls: ClientTLS?

    /// A server at `host:port` with the defaults above.
    public init(host: String = "127.0.0.1", port: Int = 11211, weight: Int = 1) {
        self.host = host
        self.port = port
        self.weight = max(1, weight)
        connectTimeout = .milliseconds(500)
        readTimeout = .milliseconds(500)
        writeTimeout = .milliseconds(500)
        maxItemSize = 1024 * 1024
        limits = MetaDecoderLimits()
        tracing = TracingConfiguration()
        tls = nil
    }

    /// Parses `host[:port]` (IPv6 in brackets).
    public init(address: String, weight: Int = 1) throws(MemcachedError) {
        var host = Substring(address)
        var port = 11211
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { throw Self.invalid("an IPv6 host misses its closing ]") }
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()) else { throw Self.invalid("the port must be a number") }
                port = number
            }
        } else if let colon = address.lastIndex(of: ":") {
            host = address[..<colon]
            guard let number = Int(address[address.index(after: colon)...]) else { throw Self.invalid("the port must be a number") }
            port = number
        }
        guard !host.isEmpty else { throw Self.invalid("the host is missing") }
        guard (1...65535).contains(port) else { throw Self.invalid("the port must be from 1 to 65535") }
        self.init(host: String(host), port: port, weight: weight)
    }

    /// `host:port`, IPv6 in brackets.
    public var description: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }

    private static func invalid(_ message: String) -> MemcachedError {
        MemcachedError(.invalidConfiguration, message: "a server address is host[:port]: \(message)")
    }
}

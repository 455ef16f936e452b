import Foundation

/// Host name lookups off the cooperative pool: `getaddrinfo` blocks (DNS, a
/// slow `/etc/hosts` NSS module), so it runs on ``BlockingCallThreads``.
public enum HostResolver {
    /// Why a name could not be resolved.
    public struct Failure: Error, Sendable, Equatable {
        /// The name that was looked up.
        public let host: String
        /// The resolver's own words (`gai_strerror`).
        public let reason: String
    }

    /// Whether `host` is already a numeric IPv4 or IPv6 address (nothing to look up).
    public static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// The first address of `host` for a TCP connection, as numeric text
    /// (`127.0.0.1`, `::1`); a numeric `host` is returned as it is, without a lookup.
    public static func resolve(_ host: String) async throws(Failure) -> String {
        if isNumeric(host) { return host }
        let result: Result<String, Failure> = await BlockingCallThreads.shared.run { lookUp(host) }
        return try result.get()
    }

    private static func lookUp(_ host: String) -> Result<String, Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            return .failure(Failure(host: host, reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(list) }
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 else {
            return .failure(Failure(host: host, reason: "no numeric address"))
        }
        return .success(text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }
}

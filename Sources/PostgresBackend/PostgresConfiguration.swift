import CLibPQ
import Foundation
import SQLCore
import SocketReactor

/// How to reach one PostgreSQL server.
///
/// The DSN is anything libpq accepts: `host=… port=… user=… dbname=…` or a
/// `postgres://user:password@host:port/db?sslmode=…` URI (libpq parses and
/// validates both). ClusterSQL keeps its own deadlines, because libpq ignores
/// `connect_timeout` on its non-blocking path: a DSN's `connect_timeout`
/// replaces ``connectTimeout``, and bounds the whole connect (TCP, TLS and the
/// server's first words), so a port that accepts but never speaks PostgreSQL
/// fails in that time. Host names are resolved before libpq sees them, off
/// Swift's cooperative pool (`HostResolver`, in the SocketReactor module), and passed as `hostaddr`.
public struct PostgresConfiguration: Sendable {
    /// The libpq DSN.
    public var dsn: String
    /// How long connecting may take in all (DNS, TCP, TLS, authentication);
    /// the DSN's `connect_timeout`, when it has one.
    public var connectTimeout: Duration = .seconds(10)
    /// How long a statement may wait for the server before the connection is
    /// given up as broken (client side; `nil`: no limit). Set
    /// `statement_timeout` on the server for a limit that keeps the connection.
    public var queryTimeout: Duration?
    /// How long a statement waits without a byte from the server before the client
    /// asks, over a new connection, whether the server still answers (`nil`: never).
    /// A server that answers is only slow: the statement waits on, checking again
    /// after as long. One that does not answer within `ServerLiveness.checkTimeout`
    /// (stopped, wedged) fails the statement connection-class. Default 10 s: a
    /// statement on a server that stops answering fails within 15 s of its last word.
    public var livenessCheckAfter: Duration? = .seconds(10)
    /// The password in the DSN, kept only to scrub it from messages.
    let password: String?
    /// The DSN's `host` entries (names, addresses, socket folders), when it has no `hostaddr`.
    let hostsToResolve: [String]
    /// The DSN's `port` entries (one for all hosts, or one each).
    let ports: [String]

    /// Parses `dsn` with libpq; `connectTimeout` applies unless the DSN sets `connect_timeout`.
    ///
    /// - Throws: `SQLError.Code.invalidConfiguration` with libpq's reason
    ///   (the DSN itself is not echoed).
    public init(
        dsn: String, connectTimeout: Duration = .seconds(10), queryTimeout: Duration? = nil,
        livenessCheckAfter: Duration? = .seconds(10)
    ) throws(SQLError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(dsn, &errorMessage) else {
            let reason = errorMessage.map { String(cString: $0) } ?? "unparsable"
            PQfreemem(errorMessage)
            throw SQLError(
                .invalidConfiguration, message: "invalid PostgreSQL DSN: \(Self.withoutEchoedInput(reason.trimmingNewlines()))",
                backend: "postgres")
        }
        defer { PQconninfoFree(options) }
        var found: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { found[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        self.dsn = dsn
        self.password = found["password"]
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.livenessCheckAfter = livenessCheckAfter
        if let text = found["connect_timeout"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            guard let seconds = Int(text) else {
                throw SQLError(
                    .invalidConfiguration, message: "invalid PostgreSQL DSN: connect_timeout must be a whole number of seconds",
                    backend: "postgres")
            }
            // libpq's own rule: 0 or less waits forever, 1 counts as 2.
            if seconds > 0 { self.connectTimeout = .seconds(max(2, seconds)) }
        }
        let hostaddr = found["hostaddr"] ?? ""
        self.hostsToResolve =
            hostaddr.isEmpty ? (found["host"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
        self.ports = (found["port"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }

    /// libpq's parse error without the part of the DSN it quotes (`invalid
    /// percent-encoded token: "…"` may quote the password, which may hold
    /// quotes itself): everything from the first quote to the last becomes
    /// `"…"`, but for the `"="` of `missing "=" after "…"`.
    static func withoutEchoedInput(_ reason: String) -> String {
        let missingEquals = "missing \"=\" after "
        var text = reason[...]
        var prefix = ""
        if let range = text.range(of: missingEquals) {
            prefix = String(text[..<range.upperBound])
            text = text[range.upperBound...]
        }
        guard let first = text.firstIndex(of: "\""), let last = text.lastIndex(of: "\"") else { return prefix + text }
        let tail = first == last ? "" : text[text.index(after: last)...]
        return prefix + text[..<first] + "\"…\"" + tail
    }

    /// Keywords that override the DSN's `host`, `hostaddr` and `port` so that
    /// libpq never looks a name up: each name is resolved off the cooperative
    /// pool (by `deadline`) and becomes one host entry per address, all of which
    /// libpq tries in order, as it would have. Empty when there is nothing to
    /// look up (sockets, numeric addresses, `localhost`, a DSN that gives `hostaddr`).
    func resolvedHosts(until deadline: ContinuousClock.Instant) async throws(SQLError) -> [(keyword: String, value: String)] {
        func isSocket(_ host: String) -> Bool { host.hasPrefix("/") || host.hasPrefix("@") }
        guard hostsToResolve.contains(where: { !isSocket($0) && HostResolver.needsLookup($0) }) else { return [] }
        guard ports.count <= 1 || ports.count == hostsToResolve.count else { return [] }  // libpq reports that mismatch itself
        var hosts: [String] = []
        var addresses: [String] = []
        var expandedPorts: [String] = []
        for (index, host) in hostsToResolve.enumerated() {
            let port = ports.count > 1 ? ports[index] : (ports.first ?? "")
            var found = [""]  // sockets, localhost and empty entries: libpq's own way
            if !isSocket(host), HostResolver.needsLookup(host) {
                do {
                    found = try await HostResolver.resolve(host, until: deadline)
                } catch {
                    switch error.kind {
                    case .timedOut:
                        throw SQLError(.timeout, message: "no address for \"\(host)\" within the connect timeout", backend: "postgres")
                    case .cancelled: throw SQLError(.cancelled, message: "cancelled while looking up \"\(host)\"", backend: "postgres")
                    case .unresolved:
                        throw SQLError(
                            .connectionFailed, message: "could not resolve host name \"\(host)\": \(error.reason)", backend: "postgres")
                    }
                }
            } else if HostResolver.isNumeric(host) {
                found = [host]
            }
            for address in found {
                hosts.append(host)
                addresses.append(address)
                expandedPorts.append(port)
            }
        }
        var overrides = [
            (keyword: "host", value: hosts.joined(separator: ",")), (keyword: "hostaddr", value: addresses.joined(separator: ",")),
        ]
        // One port serves every host; a list must stay one entry per host.
        if ports.count > 1 { overrides.append((keyword: "port", value: expandedPorts.joined(separator: ","))) }
        return overrides
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

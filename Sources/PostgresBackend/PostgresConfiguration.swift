import Foundation
import CLibPQ
import SQLCore
import SocketReadiness

/// How to reach one PostgreSQL server.
///
/// The DSN is anything libpq accepts: `host=… port=… user=… dbname=…` or a
/// `postgres://user:password@host:port/db?sslmode=…` URI (libpq parses and
/// validates both). ClusterSQL keeps its own deadlines, because libpq ignores
/// `connect_timeout` on its non-blocking path: a DSN's `connect_timeout`
/// replaces ``connectTimeout``, and bounds the whole connect (TCP, TLS and the
/// server's first words), so a port that accepts but never speaks PostgreSQL
/// fails in that time. Host names are resolved before libpq sees them, off
/// Swift's cooperative pool (``SocketReadiness/HostResolver``), and passed as `hostaddr`.
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
    /// The password in the DSN, kept only to scrub it from messages.
    let password: String?
    /// The DSN's `host` entries (names, addresses, socket folders), when it has no `hostaddr`.
    let hostsToResolve: [String]

    /// Parses `dsn` with libpq; `connectTimeout` applies unless the DSN sets `connect_timeout`.
    ///
    /// - Throws: ``SQLError/Code/invalidConfiguration`` with libpq's reason
    ///   (the DSN itself is not echoed).
    public init(dsn: String, connectTimeout: Duration = .seconds(10), queryTimeout: Duration? = nil) throws(SQLError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(dsn, &errorMessage) else {
            let reason = errorMessage.map { String(cString: $0) } ?? "unparsable"
            PQfreemem(errorMessage)
            throw SQLError(.invalidConfiguration, message: "invalid PostgreSQL DSN: \(reason.trimmingNewlines())", backend: "postgres")
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
        if let text = found["connect_timeout"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            guard let seconds = Int(text) else {
                throw SQLError(.invalidConfiguration, message: "invalid PostgreSQL DSN: connect_timeout must be a whole number of seconds", backend: "postgres")
            }
            // libpq's own rule: 0 or less waits forever, 1 counts as 2.
            if seconds > 0 { self.connectTimeout = .seconds(max(2, seconds)) }
        }
        let hostaddr = found["hostaddr"] ?? ""
        self.hostsToResolve = hostaddr.isEmpty ? (found["host"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
    }

    /// The `hostaddr` list for the DSN's host names, looked up off the
    /// cooperative pool; `nil` when there is nothing to look up (sockets,
    /// numeric addresses, a DSN that gives `hostaddr` itself).
    func resolvedHostAddresses() async throws(SQLError) -> String? {
        func isName(_ host: String) -> Bool { !host.isEmpty && !host.hasPrefix("/") && !host.hasPrefix("@") && !HostResolver.isNumeric(host) }
        guard hostsToResolve.contains(where: isName) else { return nil }
        var addresses: [String] = []
        for host in hostsToResolve {
            guard isName(host) else {
                addresses.append(host.hasPrefix("/") || host.hasPrefix("@") ? "" : host)
                continue
            }
            do {
                addresses.append(try await HostResolver.resolve(host))
            } catch {
                throw SQLError(.connectionFailed, message: "could not resolve host name \"\(host)\": \(error.reason)", backend: "postgres")
            }
        }
        return addresses.joined(separator: ",")
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

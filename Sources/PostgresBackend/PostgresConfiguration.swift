import Foundation
import CLibPQ
import SQLCore

/// How to reach one PostgreSQL server.
///
/// The DSN is anything libpq accepts: `host=… port=… user=… dbname=…` or a
/// `postgres://user:password@host:port/db?sslmode=…` URI (libpq parses and
/// validates both). ClusterSQL adds its own deadlines, because libpq ignores
/// `connect_timeout` on its non-blocking path.
public struct PostgresConfiguration: Sendable {
    /// The libpq DSN.
    public var dsn: String
    /// How long connecting may take in all (DNS, TCP, TLS, authentication).
    public var connectTimeout: Duration = .seconds(10)
    /// How long a statement may wait for the server before the connection is
    /// given up as broken (client side; `nil`: no limit). Set
    /// `statement_timeout` on the server for a limit that keeps the connection.
    public var queryTimeout: Duration?
    /// The password in the DSN, kept only to scrub it from messages.
    let password: String?

    /// Parses `dsn` with libpq.
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
        var password: String?
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val { password = String(cString: value) }
            option += 1
        }
        self.dsn = dsn
        self.password = password
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Calls `body` with libpq's parallel parameter arrays (types, values, lengths, formats).
func withParameterPointers<T>(
    _ parameters: [PostgresValues.Parameter],
    _ body: (UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> T
) -> T {
    let types = parameters.map { Oid($0.type) }
    let lengths = parameters.map { Int32($0.bytes?.count ?? 0) }
    let formats = parameters.map(\.format)
    // One buffer holds every value; text values get a terminating NUL.
    var storage: [UInt8] = []
    var offsets: [Int?] = []
    for parameter in parameters {
        guard let bytes = parameter.bytes else {
            offsets.append(nil)
            continue
        }
        offsets.append(storage.count)
        storage.append(contentsOf: bytes)
        storage.append(0)
    }
    return storage.withUnsafeBufferPointer { buffer in
        let base = UnsafeRawPointer(buffer.baseAddress)
        let values: [UnsafePointer<CChar>?] = offsets.map { offset in
            offset.flatMap { base?.advanced(by: $0).assumingMemoryBound(to: CChar.self) }
        }
        return values.withUnsafeBufferPointer { v in
            body(types, v.baseAddress, lengths, formats)
        }
    }
}

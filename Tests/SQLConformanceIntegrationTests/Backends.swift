import Foundation
import MariaDBBackend
import PostgresBackend
import SQLCore
import SQLiteBackend
import TestServers

/// The three backends, each with a database of its own kind: the shared
/// conformance scenarios run on every one of them.
enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres, mariadb

    var description: String { rawValue }

    /// A new connection to a test database of this backend (a temporary file for SQLite).
    func connect() async throws -> any SQLConnection {
        switch self {
        case .sqlite:
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(UUID().uuidString).sqlite").path
            return try await SQLiteDriver().connect(to: file)
        case .postgres:
            return try await PostgresDriver().connect(to: try await PostgresCluster.shared().primary.dsn)
        case .mariadb:
            return try await MariaDBDriver().connect(to: try await MariaDBServer.shared().dsn)
        }
    }

    /// A driver and DSN for a ``Database`` pool of this backend.
    func driverAndDSN() async throws -> (any SQLDriver, String) {
        switch self {
        case .sqlite:
            (SQLiteDriver(), FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(UUID().uuidString).sqlite").path)
        case .postgres:
            (PostgresDriver(), try await PostgresCluster.shared().primary.dsn)
        case .mariadb:
            (MariaDBDriver(), try await MariaDBServer.shared().dsn)
        }
    }
}

/// A fresh table `(id INTEGER PRIMARY KEY, name TEXT)` with a name of its own, for one test.
func freshTable(on connection: any SQLConnection, _ prefix: String) async throws -> String {
    let table = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
    _ = try await connection.execute("DROP TABLE IF EXISTS \(table)")
    _ = try await connection.execute("CREATE TABLE \(table) (id INTEGER PRIMARY KEY, name TEXT)")
    return table
}

/// How many rows `table` holds.
func count(_ table: String, on connection: any SQLConnection) async throws -> Int {
    let rows = try await connection.query("SELECT COUNT(*) FROM \(table)")
    guard case .integer(let value) = rows[0][0] else { return -1 }
    return Int(value)
}

extension Backend {
    /// A query that runs until it is stopped (SQLite) or for `seconds` (the servers).
    func slowQuery(seconds: Int) -> String {
        switch self {
        case .sqlite: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
        case .postgres: "SELECT pg_sleep(\(seconds))"
        case .mariadb: "SELECT SLEEP(\(seconds))"
        }
    }

    /// The backends with a server at the other end of a socket.
    static let network: [Backend] = [.postgres, .mariadb]
}

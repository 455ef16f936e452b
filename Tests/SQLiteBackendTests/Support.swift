import Foundation
import SQLCore
import SQLiteBackend
import Testing

/// A fresh temporary folder, removed by `cleanup()`.
struct TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// Opens an in-memory connection, runs `body`, closes it.
func withMemoryConnection<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
    let connection = try await SQLiteConnection.open(.inMemory)
    do {
        let result = try await body(connection)
        await connection.close()
        return result
    } catch {
        await connection.close()
        throw error
    }
}

/// A query that keeps SQLite busy for a long time (tens of seconds) unless interrupted.
let longRunningQuery = """
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000000)
    SELECT count(*) FROM n
    """

/// A query that takes roughly `iterations / 10` microseconds of one core.
func busyQuery(iterations: Int) -> String {
    """
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(iterations))
    SELECT sum(i) FROM n
    """
}

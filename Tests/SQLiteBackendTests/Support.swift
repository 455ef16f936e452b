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

/// Expects `body` to throw an ``SQLError`` with `code` and returns it.
@discardableResult
func expectSQLError(
    _ code: SQLError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> SQLError? {
    do {
        try await body()
        Issue.record("expected \(code), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SQLError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected SQLError \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
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

/// Expects `body` to throw an ``SQLError`` with one of `codes` and returns it.
func expectSQLErrorIn(
    _ codes: [SQLError.Code], sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> SQLError? {
    do {
        try await body()
        Issue.record("expected one of \(codes), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SQLError {
        #expect(codes.contains(error.code), "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected SQLError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

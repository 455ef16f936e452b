import Foundation
import SQLCore
import SQLTestSupport
import TestSupport
import Testing

/// Several result sets from one call (`queryAll`): a script's `SELECT`s on every backend,
/// and a MariaDB `CALL`'s result sets, with and without parameters.
@Suite("Several result sets on every backend", .timeLimit(.minutes(2)))
struct ResultSetsConformanceTests {
    @Test("a script's SELECTs give one result set each, in order; statements without rows give none", arguments: Backend.allCases)
    func script(backend: Backend) async throws {
        let db = try await backend.connect()
        let table = "result_sets_\(UInt32.random(in: 0...UInt32.max))"
        let sets = try await db.queryAll(
            "SELECT 1 AS a; CREATE TABLE \(table) (id INTEGER); INSERT INTO \(table) VALUES (7); SELECT 2 AS b, 3 AS c; SELECT id FROM \(table)"
        )
        #expect(sets.count == 3)
        #expect(sets.map(\.columns.names) == [["a"], ["b", "c"], ["id"]])
        #expect(sets.first?.first?[0] == 1)
        #expect(sets.dropFirst().first?.first.map { [$0[0], $0[1]] } == [2, 3])
        #expect(sets.last?.first?[0] == 7)
        // One statement: one set; a statement without rows: none.
        #expect(try await db.queryAll("SELECT ? + 1", [41]).map { $0.first?[0] } == [42])
        #expect(try await db.queryAll("DELETE FROM \(table)").isEmpty)
        // The connection is in step afterwards.
        #expect(try await db.query("SELECT 5")[0][0] == 5)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("MariaDB: every result set of a CALL, with and without parameters; query keeps the first")
    func mariadbCall() async throws {
        let db = try await Backend.mariadb.connect()
        let name = "two_sets_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await db.execute("CREATE PROCEDURE \(name)(IN n INT) BEGIN SELECT n AS a; SELECT n * 2 AS b, 'x' AS c; END")
        let bound = try await db.queryAll("CALL \(name)(?)", [5])
        #expect(bound.map(\.columns.names) == [["a"], ["b", "c"]])
        #expect(bound.map { $0.first?[0] } == [5, 10])
        let text = try await db.queryAll("CALL \(name)(6)")
        #expect(text.map { $0.first?[0] } == [6, 12])
        #expect(try await db.query("CALL \(name)(?)", [7]).first?[0] == 7)
        // The cached statement's own layout is intact after a CALL's later sets.
        #expect(try await db.queryAll("CALL \(name)(?)", [8]).map(\.columns.names) == [["a"], ["b", "c"]])
        #expect(try await db.query("SELECT 9")[0][0] == 9)
        _ = try await db.execute("DROP PROCEDURE \(name)")
        await db.close()
    }
}

import SQLCore
import SQLTestSupport
import SQLiteBackend
import Testing

@Suite("SQLite: many statements in one hop to the connection's thread", .timeLimit(.minutes(2)))
struct SQLiteThreadAccessTests {
    @Test("onThread runs statements, queries and batches in one closure and returns its value")
    func onThread() async throws {
        try await withMemoryConnection { connection in
            let total = try await connection.onThread { db throws(SQLError) -> Int64 in
                try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
                for id in 1...100 { try db.execute("INSERT INTO t (id, n) VALUES (?, ?)", [.integer(Int64(id)), .integer(Int64(id * 2))]) }
                try db.execute("INSERT INTO t (id, n) VALUES (?, ?)", batch: (101...200).map { [.integer(Int64($0)), 1] })
                guard case .integer(let sum) = try db.query("SELECT SUM(n) FROM t")[0][0] else { return -1 }
                return sum
            }
            #expect(total == 10_100 + 100)
            #expect(try await connection.query("SELECT COUNT(*) FROM t")[0][0] == 200)
        }
    }

    @Test("transaction commits when the closure returns and undoes everything when it throws; inside a caller's transaction it is a savepoint")
    func transaction() async throws {
        try await withMemoryConnection { connection in
            _ = try await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            try await connection.transaction { db throws(SQLError) in
                try db.execute("INSERT INTO t (id) VALUES (?)", [1])
                let open = db.isInTransaction
                #expect(open)
            }
            let error = await expectSQLError(.constraintViolation) {
                try await connection.transaction { db throws(SQLError) in
                    try db.execute("INSERT INTO t (id) VALUES (?)", [2])
                    try db.execute("INSERT INTO t (id) VALUES (?)", [1])  // taken
                }
            }
            #expect(error?.batchRow == nil, "a transaction's error is the statement's own")
            #expect(try await connection.query("SELECT id FROM t ORDER BY id").map { $0[0] } == [1], "row 2 was undone")

            try await connection.begin()
            _ = try await connection.execute("INSERT INTO t (id) VALUES (?)", [3])
            await expectSQLError(.constraintViolation) {
                try await connection.transaction { db throws(SQLError) in
                    try db.execute("INSERT INTO t (id) VALUES (?)", [4])
                    try db.execute("INSERT INTO t (id) VALUES (?)", [3])
                }
            }
            try await connection.commit()
            #expect(try await connection.query("SELECT id FROM t ORDER BY id").map { $0[0] } == [1, 3], "the caller's row stayed, the savepoint's went")
        }
    }
}

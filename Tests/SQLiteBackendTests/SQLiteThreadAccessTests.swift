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

    @Test(
        "transaction commits when the closure returns and undoes everything when it throws; inside a caller's transaction it is a savepoint"
    )
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
            #expect(
                try await connection.query("SELECT id FROM t ORDER BY id").map { $0[0] } == [1, 3],
                "the caller's row stayed, the savepoint's went")
        }
    }
}

@Suite("SQLite: tasks on the connection's own thread", .timeLimit(.minutes(2)))
struct SQLiteTaskExecutorTests {
    @Test("statements from a task that prefers the connection's executor run in place and in order; other tasks' statements still queue")
    func inPlace() async throws {
        try await withMemoryConnection { connection in
            _ = try await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, task INTEGER)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask(executorPreference: connection.taskExecutor) {
                    for id in 0..<500 {
                        _ = try await connection.execute("INSERT INTO t (id, task) VALUES (?, ?)", [.integer(Int64(id)), 1])
                    }
                }
                group.addTask {
                    for id in 500..<1_000 {
                        _ = try await connection.execute("INSERT INTO t (id, task) VALUES (?, ?)", [.integer(Int64(id)), 2])
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await connection.query("SELECT COUNT(*) FROM t")[0][0] == 1_000)
            let batch = try await withTaskExecutorPreference(connection.taskExecutor) {
                try await connection.execute(
                    "INSERT INTO t (id, task) VALUES (?, ?)", batch: (1_000..<1_100).map { [.integer(Int64($0)), 3] })
            }
            #expect(batch.count == 100)
        }
    }

    @Test("cancelling a task that runs a long statement in place interrupts it; the connection stays usable")
    func cancelInPlace() async throws {
        try await withMemoryConnection { connection in
            let task = Task(executorPreference: connection.taskExecutor) {
                try await connection.query(longRunningQuery)
            }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            let started = ContinuousClock.now
            await #expect(throws: SQLError.self) { _ = try await task.value }
            #expect(started.duration(to: .now) < .seconds(5))
            #expect(try await connection.query("SELECT 1")[0][0] == 1)
        }
    }

    @Test("a task on the executor that closes the connection goes on running elsewhere; later calls fail typed")
    func closeFromInside() async throws {
        let connection = try await SQLiteConnection.open(.inMemory)
        let outcome = try await withTaskExecutorPreference(connection.taskExecutor) { () async throws -> SQLError? in
            _ = try await connection.query("SELECT 1")
            await connection.close()
            try await Task.sleep(for: .milliseconds(10))  // resumes on the global executor: the thread has ended
            do {
                _ = try await connection.query("SELECT 1")
                return nil
            } catch let error as SQLError {
                return error
            }
        }
        #expect(outcome?.code == .closed)
    }
}

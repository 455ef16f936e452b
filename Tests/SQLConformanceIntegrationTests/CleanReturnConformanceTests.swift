import SQLCore
import SQLTestSupport
import Testing

/// A `Database` hands out only connections as clean as new ones: whatever a borrower left open
/// (a transaction begun and abandoned, a failed statement inside one, a `BEGIN` sent as SQL,
/// autocommit turned off), the next borrower's writes commit on their own and are seen elsewhere.
@Suite("A pool hands back clean connections on every backend", .timeLimit(.minutes(3)))
struct CleanReturnConformanceTests {
    struct Abandoned: Error {}

    /// A pool of one connection, so the next borrower gets the connection the last one returned.
    func onePool(_ backend: Backend) async throws -> (Database, any SQLConnection, String) {
        let (driver, dsn) = try await backend.driverAndDSN()
        var configuration = DatabaseConfiguration(name: "clean-return")
        configuration.maxOpen = 1
        configuration.maxIdle = 1
        let database = Database(driver: driver, dsn: dsn, configuration: configuration)
        let observer = try await driver.connect(to: dsn)
        let table = try await freshTable(on: observer, "clean_return")
        return (database, observer, table)
    }

    /// Each way a borrower can leave a transaction behind, on `backend`.
    static func leftovers(_ backend: Backend) -> [String] {
        var ways = ["begin, write and throw", "BEGIN as SQL and return", "a failed statement in a transaction, then throw"]
        if backend == .mariadb { ways.append("autocommit off and return") }
        return ways
    }

    func leaveBehind(_ way: String, on connection: any SQLConnection, table: String) async throws {
        switch way {
        case "begin, write and throw":
            try await connection.begin()
            _ = try await connection.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [1, "abandoned"])
            throw Abandoned()
        case "BEGIN as SQL and return":
            _ = try await connection.execute("BEGIN")
            _ = try await connection.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [1, "abandoned"])
        case "a failed statement in a transaction, then throw":
            try await connection.begin()
            _ = try? await connection.query("SELECT no_such_column FROM \(table)")
            throw Abandoned()
        case "autocommit off and return":
            _ = try await connection.execute("SET autocommit = 0")
        default:
            Issue.record("unknown way \(way)")
        }
    }

    @Test(
        "whatever transaction a borrower leaves behind, the next borrower's write commits and is seen elsewhere",
        arguments: Backend.allCases)
    func nextBorrowerIsClean(backend: Backend) async throws {
        for way in Self.leftovers(backend) {
            let (database, observer, table) = try await onePool(backend)
            do {
                try await database.withConnection { try await leaveBehind(way, on: $0, table: table) }
            } catch is Abandoned {}
            #expect(database.statistics.dirtyClosed == 1, "\(backend), \(way): closed as dirty")
            #expect(database.statistics.openConnections == 0, "\(backend), \(way)")
            _ = try await database.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [2, "next"])
            #expect(try await observer.query("SELECT name FROM \(table)").map { $0[0] } == ["next"], "\(backend), \(way)")
            try await database.withConnection { #expect($0.transactionStatus == .idle, "\(backend), \(way)") }
            _ = try await observer.execute("DROP TABLE \(table)")
            await observer.close()
            await database.close()
        }
    }

    @Test("a clean connection goes back to the pool and is reused: nothing is closed for it", arguments: Backend.allCases)
    func cleanConnectionsAreKept(backend: Backend) async throws {
        let (database, observer, table) = try await onePool(backend)
        for id in 1...3 {
            try await database.withConnection { connection in
                #expect(connection.transactionStatus == .idle)
                try await connection.begin()
                #expect(connection.transactionStatus == .inTransaction)
                _ = try await connection.execute("INSERT INTO \(table) (id, name) VALUES (?, ?)", [.integer(Int64(id)), "x"])
                try await connection.commit()
                #expect(connection.transactionStatus == .idle)
            }
        }
        try await database.withTransaction { _ = try await $0.execute("DELETE FROM \(table) WHERE id = ?", [1]) }
        do {
            try await database.withTransaction { connection -> Void in
                _ = try await connection.execute("DELETE FROM \(table)")
                throw Abandoned()
            }
        } catch is Abandoned {}
        #expect(try await count(table, on: observer) == 2)
        #expect(database.statistics.dirtyClosed == 0)
        #expect(database.statistics.openConnections == 1)
        _ = try await observer.execute("DROP TABLE \(table)")
        await observer.close()
        await database.close()
    }

    @Test("PostgreSQL reports a failed transaction apart from an open one")
    func failedTransaction() async throws {
        let connection = try await Backend.postgres.connect()
        try await connection.begin()
        _ = try? await connection.query("SELECT 1/0")
        #expect(connection.transactionStatus == .failed)
        try await connection.rollback()
        #expect(connection.transactionStatus == .idle)
        await connection.close()
        #expect(connection.transactionStatus == .unknown)
    }
}

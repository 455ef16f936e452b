import Foundation
import MariaDBBackend
import SQLCore
import SQLTestSupport
import TestServers
import TestSupport
import Testing

/// The clustersql seed's scenario list: drop, create, empty select, insert with
/// rows affected and last insert id, select, update, delete, delete of nothing.
func runSeedScenario(on db: any SQLConnection) async throws {
    let table = "seed_\(UInt32.random(in: 0...UInt32.max))"
    _ = try await db.execute("DROP TABLE IF EXISTS \(table)")
    _ = try await db.execute("CREATE TABLE \(table) (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))")
    #expect(try await db.query("SELECT * FROM \(table)").isEmpty)
    let inserted = try await db.execute("INSERT INTO \(table) (name) VALUES (?), (?)", ["one", "two"])
    #expect(inserted.rowsAffected == 2)
    let first = try #require(inserted.lastInsertID)  // the first id of a multi-row insert
    let third = try await db.execute("INSERT INTO \(table) (name) VALUES (?)", ["three"]).lastInsertID
    #expect(third.map { $0 > first } == true)  // Galera spaces ids by its cluster size
    let rows = try await db.query("SELECT name FROM \(table) WHERE id > ? ORDER BY id", [.integer(first)])
    #expect(rows.map { $0[0] } == ["two", "three"])
    #expect(try await db.execute("UPDATE \(table) SET name = ? WHERE id = ?", ["uno", .integer(first)]).rowsAffected == 1)
    // Rows matched, not changed: the same update again still counts its row.
    #expect(try await db.execute("UPDATE \(table) SET name = ? WHERE id = ?", ["uno", .integer(first)]).rowsAffected == 1)
    #expect(try await db.execute("DELETE FROM \(table) WHERE name = ?", ["two"]).rowsAffected == 1)
    #expect(try await db.execute("DELETE FROM \(table) WHERE name = ?", ["two"]).rowsAffected == 0)
    #expect(try await db.query("SELECT COUNT(*) FROM \(table)")[0][0] == 2)
    _ = try await db.execute("DROP TABLE \(table)")
}

/// Every type round-trips exactly, through prepared statements (binary
/// protocol) and plain queries (text protocol).
func runTypeRoundTrips(on db: any SQLConnection) async throws {
    let stamp = SQLTimestamp(microsecondsSinceEpoch: 1_700_000_000_123_456)
    let columns: [(String, SQLValue, SQLValue)] = [
        ("TINYINT", .integer(-128), .integer(127)), ("TINYINT UNSIGNED", .integer(0), .integer(255)),
        ("SMALLINT", .integer(-32768), .integer(32767)), ("MEDIUMINT", .integer(-8_388_608), .integer(8_388_607)),
        ("INT", .integer(-2_147_483_648), .integer(2_147_483_647)), ("BIGINT", .integer(.min), .integer(.max)),
        ("BIGINT UNSIGNED", .integer(0), .decimal(SQLDecimal("18446744073709551615")!)),
        (
            "DECIMAL(65,30)", .decimal(SQLDecimal("-12345678901234567890123456789012345.123456789012345678901234567890")!),
            .decimal(SQLDecimal("0.000000000000000000000000000001")!)
        ),
        ("FLOAT", .double(0.5), .double(-1024)), ("DOUBLE", .double(1.5e-300), .double(-.greatestFiniteMagnitude)),
        ("CHAR(5)", .text("ab"), .text("")), ("VARCHAR(100)", .text("héllo ✓ 'q' \"d\" \\ 🚀"), .text("x")),
        ("TEXT", .text(String(repeating: "long text ", count: 1000)), .text("")),
        ("BLOB", .blob(Array(0...255)), .blob([])), ("VARBINARY(10)", .blob([0, 13, 10, 0, 255]), .blob([1])),
        ("DATE", .date(SQLDate("2024-02-29")!), .date(SQLDate("1000-01-01")!)),
        ("DATETIME(6)", .timestamp(stamp), .timestamp(SQLTimestamp("1901-12-13 20:45:52.5")!)),
        ("TIMESTAMP(6) NULL", .timestamp(stamp), .timestamp(SQLTimestamp("2038-01-19 03:14:07.999999")!)),
        ("BIT(8)", .integer(0), .integer(255)), ("INT NULL", .null, .null), ("BOOLEAN", .bool(true), .bool(false)),
    ]
    let table = "types_\(UInt32.random(in: 0...UInt32.max))"
    let definitions = columns.indices.map { "c\($0) \(columns[$0].0)" }.joined(separator: ", ")
    _ = try await db.execute("CREATE TEMPORARY TABLE \(table) (id INT PRIMARY KEY, \(definitions))")
    let placeholders = Array(repeating: "?", count: columns.count + 1).joined(separator: ", ")
    _ = try await db.execute("INSERT INTO \(table) VALUES (\(placeholders))", [1] + columns.map(\.1))
    _ = try await db.execute("INSERT INTO \(table) VALUES (\(placeholders))", [2] + columns.map(\.2))
    for id in [1, 2] {
        let prepared = try await db.query("SELECT * FROM \(table) WHERE id = ?", [.integer(Int64(id))])[0]
        let plain = try await db.query("SELECT * FROM \(table) WHERE id = \(id)")[0]
        for (index, column) in columns.enumerated() {
            var expected = id == 1 ? column.1 : column.2
            if case .bool(let flag) = expected { expected = .integer(flag ? 1 : 0) }  // BOOLEAN is TINYINT(1)
            for (protocolName, row) in [("binary", prepared), ("text", plain)] {
                #expect(row[index + 1].isSameValue(as: expected), "\(column.0) (\(protocolName)): got \(row[index + 1])")
            }
        }
    }
    #expect(try await db.query("SELECT ? IS NULL", [nil])[0][0] == 1)
    await expectSQLError(.typeMismatch) { _ = try await db.query("SELECT ?", [.double(.nan)]) }
}

/// MariaDBBackend against a real standalone MariaDB started by TestServers.
@Suite("MariaDB backend", .timeLimit(.minutes(3)))
struct MariaDBBackendTests {
    func connect(queryTimeout: Duration? = nil) async throws -> any SQLConnection {
        let server = try await MariaDBServer.shared()
        return try await MariaDBDriver(queryTimeout: queryTimeout).connect(to: server.dsn)
    }

    @Test("the clustersql seed's scenario: rows affected, last insert id, delete of nothing affects 0")
    func seedScenario() async throws {
        let db = try await connect()
        try await runSeedScenario(on: db)
        await db.close()
    }

    @Test("every type round-trips exactly, through prepared statements and plain queries")
    func types() async throws {
        let db = try await connect()
        try await runTypeRoundTrips(on: db)
        await db.close()
    }

    @Test("a syntax error is statement-class with errno and SQLSTATE; the connection stays usable")
    func statementErrors() async throws {
        let db = try await connect()
        let syntax = await expectSQLError(.syntaxError) { _ = try await db.query("SELEKT 1") }
        #expect(syntax?.nativeCode == 1064)
        #expect(syntax?.sqlState == "42000")
        #expect(syntax?.kind == .statement)
        await expectSQLError(.syntaxError) { _ = try await db.query("SELECT * FROM no_such_table WHERE id = ?", [1]) }
        let table = "uniq_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await db.execute("CREATE TEMPORARY TABLE \(table) (id INT PRIMARY KEY)")
        _ = try await db.execute("INSERT INTO \(table) VALUES (?)", [1])
        let duplicate = await expectSQLError(.constraintViolation) { _ = try await db.execute("INSERT INTO \(table) VALUES (?)", [1]) }
        #expect(duplicate?.nativeCode == 1062)
        #expect(duplicate?.sqlState == "23000")
        await expectSQLError(.parameterCountMismatch) { _ = try await db.query("SELECT ?, ?", [1]) }
        #expect(db.isValid)
        #expect(try await db.query("SELECT 1")[0][0] == 1)
        await db.close()
    }

    @Test("a script runs every statement; transactions commit and roll back")
    func scriptsAndTransactions() async throws {
        let db = try await connect()
        let table = "tx_\(UInt32.random(in: 0...UInt32.max))"
        let report = try await db.execute(
            "CREATE TEMPORARY TABLE \(table) (v INT); INSERT INTO \(table) VALUES (1), (2); DELETE FROM \(table) WHERE v = 1")
        #expect(report.rowsAffected == 1)
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await db.withTransaction { tx in
                _ = try await tx.execute("INSERT INTO \(table) VALUES (?)", [3])
                throw Abort()
            }
        }
        try await db.withTransaction { tx in _ = try await tx.execute("INSERT INTO \(table) VALUES (?)", [4]) }
        #expect(try await db.query("SELECT GROUP_CONCAT(v ORDER BY v) FROM \(table)")[0][0] == "2,4")
        await db.close()
    }

    @Test("cancelling the task kills the query on the server; the connection stays usable")
    func cancellation() async throws {
        let db = try await connect()
        let watcher = try await connect()
        let marker = "kill_test_\(UInt32.random(in: 0...UInt32.max))"  // this test's sleep, not another's
        let task = Task { try await db.query("SELECT SLEEP(?) AS \(marker)", [30]) }
        // Cancel once the server runs the sleep: a KILL QUERY that lands before it (under load, the
        // prepare can take longer than any fixed pause) stops nothing and leaves the sleep to run.
        let running = try await eventually(within: TestTiming.bound(.seconds(10))) {
            try await watcher.query(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND STATE = 'User sleep'", [.text("%\(marker)%")]
            )[0][0] != 0
        }
        #expect(running)
        await watcher.close()
        let started = ContinuousClock.now
        task.cancel()
        let killed = await expectSQLError(.cancelled) { _ = try await task.value }
        #expect(killed?.nativeCode == 1317)
        #expect(killed?.kind == .statement)
        #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(3)))
        #expect(db.isValid)
        #expect(try await db.query("SELECT 5")[0][0] == 5)
        await db.close()
    }

    @Test("no log line holds a password: failed connects, a wrong password, a killed query")
    func logging() async throws {
        let capture = LogCapture()
        let driver = MariaDBDriver(logger: capture.logger())
        let server = try await MariaDBServer.shared()
        let closedPort = try LoopbackPorts.free()
        _ = try? await driver.connect(to: "test:hunter2-secret@tcp(127.0.0.1:\(server.port))/test")
        _ = try? await driver.connect(to: "mysql://app:hunter2-secret@127.0.0.1:\(closedPort)/test")
        let db = try await driver.connect(to: server.dsn)
        let task = Task { try await db.query("SELECT SLEEP(?)", [10]) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        _ = await task.result
        await db.close()
        #expect(capture.all.filter { $0.contains("connect failed") }.count == 2)
        #expect(capture.all.contains { $0.contains("mariadb connected") })
        #expect(!capture.all.contains { $0.contains("hunter2") }, "\(capture.all)")
    }

    @Test("bad inputs are typed errors, and a password never shows")
    func badInputs() async throws {
        await expectSQLError(.invalidConfiguration) { _ = try await MariaDBDriver().connect(to: "mysql://u:p@h:x/db") }
        let closedPort = try LoopbackPorts.free()
        let refused = await expectSQLError(.connectionFailed) {
            _ = try await MariaDBDriver().connect(to: "app:hunter2-secret@tcp(127.0.0.1:\(closedPort))/test")
        }
        #expect(refused.map { !$0.description.contains("hunter2") } == true)
        #expect(refused?.kind == .connection)
        await expectSQLError(.connectionFailed) { _ = try await MariaDBDriver().connect(to: "app:pw@tcp(no-such-host.invalid:3306)/test") }
        let server = try await MariaDBServer.shared()
        let wrong = await expectSQLError(.authenticationFailed) {
            _ = try await MariaDBDriver().connect(to: "test:wrong-battery@tcp(127.0.0.1:\(server.port))/test")
        }
        #expect(wrong?.nativeCode == 1045)
        #expect(wrong.map { !$0.description.contains("wrong-battery") } == true)
        let missing = await expectSQLError(.connectionFailed) {
            _ = try await MariaDBDriver().connect(to: "mysql://test:test@127.0.0.1:\(server.port)/missing_db")
        }
        #expect(missing?.nativeCode == 1049)
        let byGoForm = try await MariaDBDriver().connect(to: "test:test@tcp(127.0.0.1:\(server.port))/test?parseTime=true")
        #expect(try await byGoForm.query("SELECT DATABASE()")[0][0] == "test")
        await byGoForm.close()
        await expectSQLError(.closed) { _ = try await byGoForm.query("SELECT 1") }
    }

    @Test("stacked statements: refused in a query by default, run by an execute script, allowed everywhere with multiStatements=true")
    func stackedStatements() async throws {
        let server = try await MariaDBServer.shared()
        let db = try await MariaDBDriver().connect(to: server.dsn)
        let table = "stacked_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await db.execute("CREATE TABLE \(table) (v INT); INSERT INTO \(table) VALUES (1);")  // a script on purpose
        await expectSQLError(.syntaxError) { _ = try await db.query("SELECT 1; DELETE FROM \(table)") }
        await expectSQLError(.syntaxError) { _ = try await db.query("SELECT 1; DELETE FROM \(table)", []) }
        #expect(try await db.query("SELECT COUNT(*) FROM \(table)")[0][0] == 1, "the stacked DELETE never ran")
        // After a script the connection refuses stacked statements in a query again.
        _ = try await db.execute("INSERT INTO \(table) VALUES (2); INSERT INTO \(table) VALUES (3)")
        await expectSQLError(.syntaxError) { _ = try await db.query("SELECT 1; DELETE FROM \(table)") }
        #expect(try await db.query("SELECT COUNT(*) FROM \(table)")[0][0] == 3)
        #expect(db.isValid)
        let open = try await MariaDBDriver().connect(to: server.dsn + "?multiStatements=true")
        _ = try await open.query("SELECT 1; DELETE FROM \(table) WHERE v = 3")
        #expect(try await db.query("SELECT COUNT(*) FROM \(table)")[0][0] == 2)
        _ = try await db.execute("DROP TABLE \(table)")
        await open.close()
        await db.close()
    }
}

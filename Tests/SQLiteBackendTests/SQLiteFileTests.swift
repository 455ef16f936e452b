import Foundation
import SQLCore
import SQLTestSupport
import SQLiteBackend
import Testing

@Suite("SQLite: files, DSNs, open modes and bad inputs", .timeLimit(.minutes(2)))
struct SQLiteFileTests {
    @Test("a file database persists across connections and uses WAL by default")
    func fileDatabase() async throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        let driver = SQLiteDriver()
        let path = folder.path("data.sqlite")
        let writer = try await driver.connect(to: path)
        _ = try await writer.execute("CREATE TABLE t (v TEXT)")
        _ = try await writer.execute("INSERT INTO t VALUES (?)", ["kept"])
        #expect(try await writer.query("PRAGMA journal_mode")[0][0] == "wal")
        await writer.close()
        let reader = try await driver.connect(to: "sqlite:\(path)?mode=ro")
        #expect(try await reader.query("SELECT v FROM t")[0][0] == "kept")
        await reader.close()
    }

    @Test("DSN options are applied: busy_timeout, foreign_keys, journal_mode, file: URIs")
    func dsnOptions() async throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        let db = try await SQLiteDriver().connect(
            to: "\(folder.path("o.db"))?busy_timeout=1234&foreign_keys=off&journal_mode=delete&synchronous=full")
        #expect(try await db.query("PRAGMA busy_timeout")[0][0] == 1234)
        #expect(try await db.query("PRAGMA foreign_keys")[0][0] == 0)
        #expect(try await db.query("PRAGMA journal_mode")[0][0] == "delete")
        #expect(try await db.query("PRAGMA synchronous")[0][0] == 2)
        await db.close()
        let shared = try await SQLiteDriver().connect(to: "file:shared-\(UUID().uuidString)?mode=memory&cache=shared")
        #expect(try await shared.query("SELECT 1")[0][0] == 1)
        await shared.close()
    }

    @Test(
        "malformed DSNs are typed errors that name the key, not the value",
        arguments: [
            "", "db.sqlite?mode=bogus", "db.sqlite?busy_timeout=soon", "db.sqlite?nonsense=1",
            "db.sqlite?journal_mode=fast", "db.sqlite?statement_cache=0", "sqlite:",
        ])
    func malformedDSN(_ dsn: String) async throws {
        let error = await expectSQLError(.invalidConfiguration) { _ = try await SQLiteDriver().connect(to: dsn) }
        #expect(error.map { !$0.description.contains("soon") && !$0.description.contains("bogus") } == true)
    }

    @Test("a read-only connection refuses writes with .readOnly")
    func readOnly() async throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        let path = folder.path("ro.db")
        let setup = try await SQLiteDriver().connect(to: path)
        _ = try await setup.execute("CREATE TABLE t (v INTEGER)")
        await setup.close()
        let reader = try await SQLiteDriver().connect(to: "\(path)?mode=ro")
        let error = await expectSQLError(.readOnly) { _ = try await reader.execute("INSERT INTO t VALUES (1)") }
        #expect(error?.kind == .statement)
        await reader.close()
    }

    @Test("an unwritable or missing path is .cannotOpen")
    func cannotOpen() async throws {
        await expectSQLError(.cannotOpen) { _ = try await SQLiteDriver().connect(to: "/nonexistent-folder/sub/db.sqlite") }
        await expectSQLError(.cannotOpen) {
            _ = try await SQLiteDriver().connect(to: "/tmp/clustersql-missing-\(UUID().uuidString).db?mode=rw")
        }
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        // A directory is not a database file either.
        await expectSQLError(.cannotOpen) { _ = try await SQLiteDriver().connect(to: folder.url.path) }
    }

    @Test("a file that is not SQLite is .notADatabase; a damaged one is .corrupt or .notADatabase")
    func badFiles() async throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        let text = folder.path("notes.txt")
        try Data(String(repeating: "this is not a database\n", count: 400).utf8).write(to: URL(fileURLWithPath: text))
        let notDB = await expectSQLError(.notADatabase) { _ = try await SQLiteDriver().connect(to: text) }
        #expect(notDB?.kind == .connection)

        // A real database whose pages after the header are overwritten with garbage.
        let path = folder.path("damaged.db")
        let db = try await SQLiteDriver().connect(to: "\(path)?journal_mode=delete")
        _ = try await db.execute("CREATE TABLE t (v TEXT); CREATE INDEX tv ON t (v)")
        let insert = try await db.prepare("INSERT INTO t VALUES (?)")
        for i in 0..<2000 { _ = try await insert.execute([.text("row \(i) " + String(repeating: "x", count: 50))]) }
        await insert.close()
        await db.close()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in 4096..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = await expectSQLError(oneOf: [.corrupt, .notADatabase]) {
            let damaged = try await SQLiteDriver().connect(to: path)
            do {
                _ = try await damaged.query("SELECT count(*), max(v) FROM t")
            } catch {
                await damaged.close()
                throw error
            }
            await damaged.close()
        }
        #expect(error?.kind == .connection)
    }

    @Test("a second writer waits busy_timeout, then fails with .busy")
    func busy() async throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanup() }
        let path = folder.path("busy.db")
        let first = try await SQLiteDriver().connect(to: "\(path)?transaction_mode=immediate")
        let second = try await SQLiteDriver().connect(to: "\(path)?busy_timeout=100&transaction_mode=immediate")
        _ = try await first.execute("CREATE TABLE t (v INTEGER)")
        try await first.begin()
        _ = try await first.execute("INSERT INTO t VALUES (1)")
        let started = ContinuousClock.now
        let error = await expectSQLError(.busy) { try await second.begin() }
        #expect(error?.kind == .statement)
        #expect(ContinuousClock.now - started >= .milliseconds(90))
        try await first.commit()
        try await second.begin()
        _ = try await second.execute("INSERT INTO t VALUES (2)")
        try await second.commit()
        #expect(try await first.query("SELECT count(*) FROM t")[0][0] == 2)
        await first.close()
        await second.close()
    }
}

import Foundation
import SQLCore
import SQLiteBackend
import Testing

@Suite("SQLite: every SQLValue round-trips", .timeLimit(.minutes(2)))
struct SQLiteRoundTripTests {
    /// Inserts `value` into a column declared `type` and reads it back as an SQLValue.
    func roundTrip(_ value: SQLValue, declaredAs type: String) async throws -> SQLValue {
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE t (v \(type))")
            _ = try await db.execute("INSERT INTO t (v) VALUES (?)", [value])
            let rows = try await db.query("SELECT v FROM t")
            #expect(rows.count == 1)
            return rows[0][0]
        }
    }

    @Test("64-bit integers keep every bit", arguments: [Int64.min, -1, 0, 1, Int64(Int32.max) + 1, Int64.max])
    func integers(_ n: Int64) async throws {
        #expect(try await roundTrip(.integer(n), declaredAs: "INTEGER") == .integer(n))
    }

    @Test(
        "doubles, NaN and the infinities included",
        arguments: [0.0, -0.0, 1.5, -2.25e-308, Double.greatestFiniteMagnitude, .infinity, -.infinity, .nan])
    func doubles(_ d: Double) async throws {
        let back = try await roundTrip(.double(d), declaredAs: "REAL")
        #expect(back.isSameValue(as: .double(d)), "got \(back)")
        // SQLite stores integral REALs as integers, so -0.0 comes back as 0.0 (equal, without the sign).
        let exactBits = !d.isNaN && d != 0
        #expect(try Double(sqlValue: back).bitPattern == d.bitPattern || !exactBits)
    }

    @Test(
        "text: empty, unicode, NUL inside, quotes",
        arguments: ["", "héllo wörld ✓ 漢字 🚀", "a\u{0}b", "it's \"quoted\"", String(repeating: "x", count: 100_000)])
    func text(_ s: String) async throws {
        #expect(try await roundTrip(.text(s), declaredAs: "TEXT") == .text(s))
    }

    @Test("blobs: empty, with NUL and CRLF, all byte values")
    func blobs() async throws {
        for bytes: [UInt8] in [[], [0], [0, 13, 10, 0, 255], Array(0...255), Array(repeating: 7, count: 1 << 20)] {
            #expect(try await roundTrip(.blob(bytes), declaredAs: "BLOB") == .blob(bytes))
        }
    }

    @Test("NULL in every declared type", arguments: ["INTEGER", "REAL", "TEXT", "BLOB", "BOOLEAN", "DATE", "TIMESTAMP", ""])
    func nulls(_ type: String) async throws {
        let back = try await roundTrip(.null, declaredAs: type)
        #expect(back == .null)
        #expect(try Int?(sqlValue: back) == nil)
    }

    @Test("booleans come back as bool in a BOOLEAN column and as 0/1 elsewhere")
    func booleans() async throws {
        #expect(try await roundTrip(.bool(true), declaredAs: "BOOLEAN") == .bool(true))
        #expect(try await roundTrip(.bool(false), declaredAs: "BOOL") == .bool(false))
        let plain = try await roundTrip(.bool(true), declaredAs: "INTEGER")
        #expect(plain == .integer(1))
        #expect(try Bool(sqlValue: plain) == true)
    }

    @Test("dates and microsecond timestamps")
    func temporal() async throws {
        let date = try #require(SQLDate(year: 2024, month: 2, day: 29))
        #expect(try await roundTrip(.date(date), declaredAs: "DATE") == .date(date))
        let stamps = [
            SQLTimestamp(microsecondsSinceEpoch: 1_700_000_000_123_456),
            SQLTimestamp(microsecondsSinceEpoch: 0),
            SQLTimestamp(microsecondsSinceEpoch: -1),  // 1969-12-31 23:59:59.999999
            SQLTimestamp(microsecondsSinceEpoch: 253_402_300_799_999_999),  // 9999-12-31 23:59:59.999999
        ]
        for stamp in stamps {
            #expect(try await roundTrip(.timestamp(stamp), declaredAs: "TIMESTAMP") == .timestamp(stamp))
        }
        let now = Date(timeIntervalSince1970: 1_700_000_000.654321)
        let back = try await roundTrip(now.sqlValue, declaredAs: "DATETIME")
        #expect(try Date(sqlValue: back) == now)
        // In an untyped column the text still decodes to the same instant.
        let untyped = try await roundTrip(.timestamp(stamps[0]), declaredAs: "")
        #expect(try SQLTimestamp(sqlValue: untyped) == stamps[0])
    }

    @Test("decimals stay exact in a TEXT column")
    func decimals() async throws {
        for text in ["0", "-0.000000000000000000000001", "123456789012345678901234567890.123456789", "1.50"] {
            let decimal = try #require(SQLDecimal(text))
            let back = try await roundTrip(.decimal(decimal), declaredAs: "TEXT")
            #expect(try SQLDecimal(sqlValue: back).text == text)
        }
        let money = Decimal(string: "19.99")!
        let back = try await roundTrip(money.sqlValue, declaredAs: "TEXT")
        #expect(try Decimal(sqlValue: back) == money)
    }

    @Test("a Decodable row maps columns to properties")
    func decodableRows() async throws {
        struct Person: Decodable, Equatable {
            let id: Int
            let name: String
            let nickname: String?
            let active: Bool
            let joined: SQLDate
        }
        try await withMemoryConnection { db in
            _ = try await db.execute(
                """
                CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, nickname TEXT, active BOOLEAN, joined DATE)
                """)
            _ = try await db.execute(
                "INSERT INTO people VALUES (?, ?, ?, ?, ?)", [1, "Ada", nil, true, .date(SQLDate("1843-07-01")!)])
            let person = try await db.query("SELECT * FROM people")[0].decode(Person.self)
            #expect(person == Person(id: 1, name: "Ada", nickname: nil, active: true, joined: SQLDate("1843-07-01")!))
        }
    }

    @Test("text and blob parameters of one statement, mixed with other values, past the binding arena's room and after it")
    func manyTextAndBlobParameters() async throws {
        try await withMemoryConnection { db in
            _ = try await db.execute("CREATE TABLE t (id INTEGER, a TEXT, b BLOB, c TEXT, d, e BLOB)")
            let large = String(repeating: "L", count: 300_000)  // the whole statement is then bound with SQLite's copies
            let sets: [[SQLValue]] = [
                [1, "", .blob([]), "ünïcødé ✓", .null, .blob([0, 1, 2])],
                [2, .text(large), .blob(Array(repeating: 9, count: 1_000)), "small", "x", .blob([])],
                [3, "after the large one", .blob([255]), .text(String(repeating: "m", count: 5_000)), 4.5, .blob([7, 7])],
            ]
            for values in sets { _ = try await db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", values) }
            let shifted: [[SQLValue]] = sets.enumerated().map { [.integer(Int64($0.offset + 11))] + $0.element.dropFirst() }
            _ = try await db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", batch: shifted)
            let rows = try await db.query("SELECT * FROM t ORDER BY id")
            #expect(rows.count == 6)
            for (row, sent) in zip(rows, sets + sets) {
                #expect(Array(row.values.dropFirst()) == Array(sent.dropFirst()), "row \(row[0])")
            }
            // A text parameter in a WHERE clause finds its row, statement after statement.
            for (offset, values) in sets.enumerated() {
                let found = try await db.query("SELECT id FROM t WHERE a = ? AND c = ? ORDER BY id", [values[1], values[3]])
                #expect(found.map { $0[0] } == [.integer(Int64(offset + 1)), .integer(Int64(offset + 11))])
            }
        }
    }
}

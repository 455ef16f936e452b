import Foundation
import SQLCore
import Testing

@Suite("SQLValue, its exact types and typed conversion", .timeLimit(.minutes(2)))
struct SQLValueTests {
    @Test("dates parse, validate the calendar and count days from the epoch")
    func dates() throws {
        #expect(SQLDate("2024-02-29")?.description == "2024-02-29")
        #expect(SQLDate("2023-02-29") == nil)
        #expect(SQLDate("2024-13-01") == nil)
        #expect(SQLDate("24-01-01") == nil)
        #expect(SQLDate("1970-01-01")?.daysSinceEpoch == 0)
        #expect(SQLDate("1969-12-31")?.daysSinceEpoch == -1)
        for days in [-719_162, -1, 0, 1, 19_000, 2_932_896] {
            #expect(SQLDate(daysSinceEpoch: days)?.daysSinceEpoch == days)
        }
        #expect(SQLDate(daysSinceEpoch: 2_932_897) == nil)  // year 10000
    }

    @Test("timestamps parse zones and fractions and print UTC exactly")
    func timestamps() throws {
        let t = try #require(SQLTimestamp("2023-11-14 22:13:20.123456"))
        #expect(t.microsecondsSinceEpoch == 1_700_000_000_123_456)
        #expect(t.description == "2023-11-14 22:13:20.123456")
        #expect(SQLTimestamp("2023-11-14T23:13:20.123456+01:00") == t)
        #expect(SQLTimestamp("2023-11-14T22:13:20.123456Z") == t)
        #expect(SQLTimestamp("2023-11-14 22:13:20.1")?.microsecondsSinceEpoch == 1_700_000_000_100_000)
        #expect(SQLTimestamp("2023-11-14 22:13:20")?.description == "2023-11-14 22:13:20")
        #expect(SQLTimestamp(microsecondsSinceEpoch: -1).description == "1969-12-31 23:59:59.999999")
        #expect(SQLTimestamp("2023-11-14 25:00:00") == nil)
        #expect(SQLTimestamp("2023-11-14 22:13:20.") == nil)
        #expect(SQLTimestamp("2023-11-14 22:13:20 junk") == nil)
        let date = Date(timeIntervalSince1970: 1_700_000_000.5)
        #expect(SQLTimestamp(date).date == date)
    }

    @Test("decimals keep their text and compare numerically")
    func decimals() throws {
        let a = try #require(SQLDecimal("1.50"))
        #expect(a.text == "1.50")
        #expect(a == SQLDecimal("1.5"))
        #expect(a == SQLDecimal("+0001.500"))
        #expect(a == SQLDecimal("15e-1"))
        #expect(a.hashValue == SQLDecimal("1.5")!.hashValue)
        #expect(SQLDecimal("-0") == SQLDecimal("0.000"))
        #expect(SQLDecimal("1.5") != SQLDecimal("-1.5"))
        for bad in ["", "-", ".", "1.2.3", "1e", "abc", "1,5", "NaN", "Infinity", " 1"] {
            #expect(SQLDecimal(bad) == nil, "\(bad)")
        }
        let huge = try #require(SQLDecimal("123456789012345678901234567890123456789012.5"))
        #expect(huge.decimalValue == nil)  // more digits than Foundation.Decimal holds
        #expect(SQLDecimal("19.99")?.decimalValue == Decimal(string: "19.99"))
    }

    @Test("dates, timestamps and decimals encode as their exact text")
    func codable() throws {
        struct Order: Codable, Equatable {
            let day: SQLDate
            let at: SQLTimestamp
            let total: SQLDecimal
        }
        let order = Order(
            day: SQLDate("2024-02-29")!, at: SQLTimestamp(microsecondsSinceEpoch: 1_700_000_000_000_001),
            total: SQLDecimal("12345678901234567890.10")!)
        let json = String(decoding: try JSONEncoder().encode(order), as: UTF8.self)
        #expect(json.contains("\"2024-02-29\""))
        #expect(json.contains("\"2023-11-14 22:13:20.000001\""))
        #expect(json.contains("\"12345678901234567890.10\""))
        #expect(try JSONDecoder().decode(Order.self, from: Data(json.utf8)) == order)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(SQLDate.self, from: Data("\"2023-02-30\"".utf8)) }
    }

    @Test("typed decoding accepts every storage form of a type and refuses the rest")
    func conversions() throws {
        #expect(try Int(sqlValue: .integer(42)) == 42)
        #expect(try Int(sqlValue: .decimal(SQLDecimal("42")!)) == 42)
        #expect(throws: SQLError.self) { try Int8(sqlValue: .integer(300)) }
        #expect(throws: SQLError.self) { try Int(sqlValue: .double(1.5)) }
        #expect(try UInt64(sqlValue: .decimal(SQLDecimal("18446744073709551615")!)) == .max)
        #expect(UInt64.max.sqlValue == .decimal(SQLDecimal("18446744073709551615")!))
        #expect(try Bool(sqlValue: .integer(1)) == true)
        #expect(throws: SQLError.self) { try Bool(sqlValue: .integer(2)) }
        #expect(try Double(sqlValue: .text("NaN")).isNaN)
        #expect(throws: SQLError.self) { try String(sqlValue: .integer(1)) }
        #expect(try String?(sqlValue: .null) == nil)
        #expect(try [UInt8](sqlValue: .blob([0, 1])) == [0, 1])
        #expect(try Data(sqlValue: .blob([])) == Data())
        let uuid = UUID()
        #expect(try UUID(sqlValue: uuid.sqlValue) == uuid)
        #expect(try SQLDate(sqlValue: .text("2020-01-02")) == SQLDate("2020-01-02"))
        #expect(try SQLTimestamp(sqlValue: .date(SQLDate("1970-01-02")!)).microsecondsSinceEpoch == 86_400_000_000)
    }

    @Test("a type mismatch names the types and the column, never the value")
    func mismatchMessage() throws {
        let row = SQLRow(columns: SQLColumns(["secret"]), values: [.text("hunter2")])
        do {
            _ = try row.decode(Int.self, column: "secret")
            Issue.record("expected a type mismatch")
        } catch {
            #expect(error.code == .typeMismatch)
            #expect(error.description.contains("secret"))
            #expect(error.description.contains("text"))
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test("rows: access by index and by name (exact, then case-insensitive), duplicate names, Decodable")
    func rows() throws {
        struct Item: Decodable {
            let id: Int64
            let label: String?
            let price: SQLDecimal
        }
        let columns = SQLColumns(["id", "Label", "price", "id"])
        let row = SQLRow(columns: columns, values: [1, nil, .decimal(SQLDecimal("9.99")!), 2])
        #expect(row[0] == 1)
        #expect(row["id"] == 1)
        #expect(row["label"] == .null)
        #expect(row["missing"] == nil)
        #expect(throws: SQLError.self) { try row.decode(Int.self, column: "missing") }
        #expect(throws: SQLError.self) { try row.decode(Int.self, at: 9) }
        let item = try row.decode(Item.self)
        #expect(item.id == 1 && item.label == nil && item.price.text == "9.99")
    }

    @Test("literals build values, and NaN equals NaN only through isSameValue")
    func literals() {
        let values: [SQLValue] = [nil, 1, 1.5, "x", true]
        #expect(values == [.null, .integer(1), .double(1.5), .text("x"), .bool(true)])
        #expect(SQLValue.double(.nan) != .double(.nan))
        #expect(SQLValue.double(.nan).isSameValue(as: .double(.nan)))
        #expect(SQLValue.blob([0, 255]).displayText == "x'00ff'")
    }

    @Test("results: rows share one array of values, built row after row; made from rows; with no columns")
    func results() {
        let columns = SQLColumns(["id", "name"])
        var builder = SQLRowsBuilder(columns: columns, reservingRows: 2)
        for (id, name) in [(1, "a"), (2, "b"), (3, "c")] {
            builder.append(.integer(Int64(id)))
            builder.append(.text(name))
        }
        let built = builder.build()
        #expect(built.count == 3)
        #expect(built.map { $0["name"] } == ["a", "b", "c"])
        #expect(built[2].values == [3, "c"])
        #expect(built.rows.map(\.values) == [[1, "a"], [2, "b"], [3, "c"]])
        let made = SQLRows(columns: columns, rows: built.rows)
        #expect(made.map(\.values) == built.map(\.values))
        let empty = SQLRows(columns: SQLColumns([]), rows: [SQLRow(columns: SQLColumns([]), values: [])])
        #expect(empty.count == 1 && empty[0].values.isEmpty)
        #expect(SQLRowsBuilder(columns: columns).build().isEmpty)
    }
}

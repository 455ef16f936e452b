import Foundation

/// A calendar date (proleptic Gregorian) without time of day or time zone.
public struct SQLDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The year, 1 to 9999.
    public let year: Int
    /// The month, 1 to 12.
    public let month: Int
    /// The day of the month, 1 to 31 (checked against the month).
    public let day: Int

    /// Creates a date, or `nil` when the fields do not name a real day.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
            day >= 1, day <= Self.daysIn(month: month, year: year)
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD`.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            let y = decimalNumber(bytes[0..<4]), let m = decimalNumber(bytes[5..<7]),
            let d = decimalNumber(bytes[8..<10])
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// Days since 1970-01-01 (negative before).
    public var daysSinceEpoch: Int {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01, or `nil` outside years 1 to 9999.
    public init?(daysSinceEpoch days: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (m <= 2 ? 1 : 0), month: m, day: d)
    }

    /// `YYYY-MM-DD`.
    public var description: String {
        padded(year, 4) + "-" + padded(month, 2) + "-" + padded(day, 2)
    }

    /// Orders by calendar position.
    public static func < (lhs: SQLDate, rhs: SQLDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

/// An instant in time, exact to the microsecond (the precision of PostgreSQL
/// and MariaDB timestamps), held as microseconds since 1970-01-01 00:00:00 UTC.
///
/// Timestamps without a time zone (PostgreSQL `timestamp`, MariaDB `DATETIME`)
/// are read and written as UTC.
public struct SQLTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since the Unix epoch, UTC.
    public let microsecondsSinceEpoch: Int64

    /// Creates a timestamp from microseconds since the Unix epoch.
    public init(microsecondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
    }

    /// Creates a timestamp from a Foundation date, rounded to the microsecond.
    public init(_ date: Date) {
        self.microsecondsSinceEpoch = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The same instant as a Foundation date.
    public var date: Date {
        Date(timeIntervalSince1970: Double(microsecondsSinceEpoch) / 1_000_000)
    }

    /// The UTC calendar date of this instant.
    public var utcDate: SQLDate? {
        SQLDate(daysSinceEpoch: Int(floorDiv(microsecondsSinceEpoch, 86_400_000_000)))
    }

    /// Parses `YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH[:MM]]`; without a zone it is UTC.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19, let date = SQLDate(String(decoding: bytes[0..<10], as: UTF8.self)),
            bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let hour = decimalNumber(bytes[11..<13]), hour < 24,
            let minute = decimalNumber(bytes[14..<16]), minute < 60,
            let second = decimalNumber(bytes[17..<19]), second < 60
        else { return nil }
        var index = 19
        var micros: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, let digit = asciiDigit(bytes[index]) {
                if digits < 6 { micros = micros * 10 + Int64(digit) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            guard let offset = parseZoneOffset(bytes[index...]) else { return nil }
            offsetSeconds = offset
        }
        let seconds =
            Int64(date.daysSinceEpoch) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
            - Int64(offsetSeconds)
        self.init(microsecondsSinceEpoch: seconds * 1_000_000 + micros)
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (the fraction only when non-zero).
    public var description: String {
        let days = floorDiv(microsecondsSinceEpoch, 86_400_000_000)
        let inDay = microsecondsSinceEpoch - days * 86_400_000_000
        let date = SQLDate(daysSinceEpoch: Int(days))?.description ?? "out-of-range"
        let seconds = Int(inDay / 1_000_000)
        let fraction = Int(inDay % 1_000_000)
        var text =
            date + " " + padded(seconds / 3600, 2) + ":" + padded(seconds / 60 % 60, 2) + ":"
            + padded(seconds % 60, 2)
        if fraction != 0 { text += "." + padded(fraction, 6) }
        return text
    }

    /// Orders by instant.
    public static func < (lhs: SQLTimestamp, rhs: SQLTimestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }
}

private func parseZoneOffset(_ bytes: ArraySlice<UInt8>) -> Int? {
    guard let first = bytes.first else { return 0 }
    if first == UInt8(ascii: "Z"), bytes.count == 1 { return 0 }
    guard first == UInt8(ascii: "+") || first == UInt8(ascii: "-") else { return nil }
    let sign = first == UInt8(ascii: "+") ? 1 : -1
    let rest = Array(bytes.dropFirst()).filter { $0 != UInt8(ascii: ":") }
    guard rest.count == 2 || rest.count == 4, let hours = decimalNumber(rest[0..<2]), hours <= 15 else { return nil }
    var minutes = 0
    if rest.count == 4 {
        guard let m = decimalNumber(rest[2..<4]), m < 60 else { return nil }
        minutes = m
    }
    return sign * (hours * 3600 + minutes * 60)
}

func asciiDigit(_ byte: UInt8) -> Int? {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
}

func decimalNumber(_ bytes: ArraySlice<UInt8>) -> Int? {
    var value = 0
    for byte in bytes {
        guard let digit = asciiDigit(byte) else { return nil }
        value = value * 10 + digit
    }
    return bytes.isEmpty ? nil : value
}

func padded(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

extension SQLDate: SQLTextCodable {
    /// Parses `YYYY-MM-DD` (the `LosslessStringConvertible` form).
    public init?(_ description: String) { self.init(description[...]) }
}

extension SQLTimestamp: SQLTextCodable {
    /// Parses timestamp text (the `LosslessStringConvertible` form).
    public init?(_ description: String) { self.init(description[...]) }
}

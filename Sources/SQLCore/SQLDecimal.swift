import Foundation

/// An exact decimal number of any precision, kept as validated text.
///
/// PostgreSQL `numeric` and MariaDB `DECIMAL` carry more digits than any
/// binary type; this value keeps every one of them and its scale (`1.50`
/// stays `1.50`). Equality and hashing are numeric: `1.50 == 1.5`.
public struct SQLDecimal: Sendable, Hashable, CustomStringConvertible {
    /// The text as given, validated: `[-+]?digits[.digits]` or `[-+]?.digits`,
    /// with an optional exponent `e[-+]?digits`.
    public let text: String

    /// Parses decimal text; `nil` for anything that is not a finite decimal number.
    public init?(_ text: String) {
        guard Self.canonical(text) != nil else { return nil }
        self.text = text
    }

    /// Converts a Foundation decimal exactly; `nil` for NaN.
    public init?(_ decimal: Decimal) {
        guard !decimal.isNaN else { return nil }
        self.init(decimal.description)
    }

    /// Converts an integer exactly.
    public init(_ value: Int64) {
        self.text = String(value)
    }

    /// The value as a Foundation `Decimal` (38 significant digits at most), or
    /// `nil` when it does not fit without loss.
    public var decimalValue: Decimal? {
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")),
            let back = SQLDecimal(value), back == self
        else { return nil }
        return value
    }

    /// The text as given.
    public var description: String { text }

    /// Numeric equality.
    public static func == (lhs: SQLDecimal, rhs: SQLDecimal) -> Bool {
        Self.canonical(lhs.text)! == Self.canonical(rhs.text)!
    }

    /// Hashes the canonical form, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        let c = Self.canonical(text)!
        hasher.combine(c.negative)
        hasher.combine(c.digits)
        hasher.combine(c.exponent)
    }

    /// Sign, significant digits without leading or trailing zeros, and the
    /// power of ten of the last digit; zero is (false, "", 0).
    struct Canonical: Equatable {
        var negative: Bool
        var digits: String
        var exponent: Int
    }

    static func canonical(_ text: String) -> Canonical? {
        var bytes = Substring(text).utf8[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var seenPoint = false
        var sawDigit = false
        var exponent = 0
        while let byte = bytes.first {
            if asciiDigit(byte) != nil {
                digits.append(byte)
                if seenPoint { fractionDigits += 1 }
                sawDigit = true
            } else if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                bytes = bytes.dropFirst()
                guard sawDigit, let e = parseExponent(bytes) else { return nil }
                exponent = e
                bytes = bytes[bytes.endIndex...]
                break
            } else {
                return nil
            }
            bytes = bytes.dropFirst()
        }
        guard sawDigit else { return nil }
        exponent -= fractionDigits
        while digits.first == UInt8(ascii: "0") { digits.removeFirst() }
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty { return Canonical(negative: false, digits: "", exponent: 0) }
        return Canonical(negative: negative, digits: String(decoding: digits, as: UTF8.self), exponent: exponent)
    }

    private static func parseExponent(_ bytes: Substring.UTF8View.SubSequence) -> Int? {
        var rest = bytes
        var sign = 1
        if let first = rest.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            sign = first == UInt8(ascii: "-") ? -1 : 1
            rest = rest.dropFirst()
        }
        guard !rest.isEmpty, rest.count <= 6, let value = decimalNumber(ArraySlice(rest)) else { return nil }
        return sign * value
    }
}

extension SQLDecimal: SQLTextCodable {}

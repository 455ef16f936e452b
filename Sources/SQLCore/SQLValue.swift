/// A value bound to a statement or read from a row.
///
/// Backends map their native types onto these cases and back. Values that a
/// backend cannot store natively keep their exactness through a textual form:
/// see ``SQLDecimal`` and ``SQLTimestamp``.
public enum SQLValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// A signed 64-bit integer.
    case integer(Int64)
    /// A double-precision float, NaN and the infinities included.
    case double(Double)
    /// UTF-8 text.
    case text(String)
    /// Raw bytes; may be empty and may contain NUL.
    case blob([UInt8])
    /// A boolean.
    case bool(Bool)
    /// A calendar date without time of day or time zone.
    case date(SQLDate)
    /// An instant, exact to the microsecond.
    case timestamp(SQLTimestamp)
    /// An exact decimal number.
    case decimal(SQLDecimal)

    /// `true` for ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The name of the case, for messages that must not show the value itself.
    var typeName: String {
        switch self {
        case .null: "null"
        case .integer: "integer"
        case .double: "double"
        case .text: "text"
        case .blob: "blob"
        case .bool: "bool"
        case .date: "date"
        case .timestamp: "timestamp"
        case .decimal: "decimal"
        }
    }

    /// Equality that treats two NaN doubles as equal (the synthesized `==` does not).
    package func isSameValue(as other: SQLValue) -> Bool {
        if case .double(let a) = self, case .double(let b) = other, a.isNaN, b.isNaN { return true }
        return self == other
    }

    /// A short rendering for tables and logs of results (never used for bind values in errors).
    public var displayText: String {
        switch self {
        case .null: "NULL"
        case .integer(let v): String(v)
        case .double(let v): String(v)
        case .text(let v): v
        case .blob(let bytes): "x'" + bytes.map { hexDigits($0) }.joined() + "'"
        case .bool(let v): v ? "true" : "false"
        case .date(let v): v.description
        case .timestamp(let v): v.description
        case .decimal(let v): v.description
        }
    }
}

private func hexDigits(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
}

extension SQLValue: ExpressibleByNilLiteral {
    /// `nil` is ``null``.
    public init(nilLiteral: ()) { self = .null }
}

extension SQLValue: ExpressibleByIntegerLiteral {
    /// An integer literal is ``integer(_:)``.
    public init(integerLiteral value: Int64) { self = .integer(value) }
}

extension SQLValue: ExpressibleByFloatLiteral {
    /// A float literal is ``double(_:)``.
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension SQLValue: ExpressibleByStringLiteral {
    /// A string literal is ``text(_:)``.
    public init(stringLiteral value: String) { self = .text(value) }
}

extension SQLValue: ExpressibleByBooleanLiteral {
    /// A boolean literal is ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

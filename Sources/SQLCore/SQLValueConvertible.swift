import Foundation

/// A Swift type that can be bound as a parameter and decoded from a column.
///
/// Decoding accepts every storage form a backend may return for the type: a
/// `Bool` decodes from ``SQLValue/bool(_:)`` and from the integers 0 and 1
/// (SQLite, MariaDB `TINYINT(1)`); a `Date` from a timestamp or its text; an
/// integer from a decimal with no fraction. Anything else is a
/// ``SQLError/Code/typeMismatch`` error that names the types, never the value.
public protocol SQLValueConvertible: Sendable {
    /// Decodes from a column value.
    init(sqlValue: SQLValue) throws(SQLError)
    /// The value to bind.
    var sqlValue: SQLValue { get }
}

extension SQLError {
    /// A type-mismatch error that names both types but not the value.
    public static func typeMismatch(_ value: SQLValue, to type: Any.Type) -> SQLError {
        SQLError(.typeMismatch, message: "cannot convert a \(value.typeName) value to \(type)")
    }
}

extension SQLValue: SQLValueConvertible {
    /// The value itself.
    public init(sqlValue: SQLValue) { self = sqlValue }
    /// The value itself.
    public var sqlValue: SQLValue { self }

    /// Wraps any convertible value.
    public init(_ value: some SQLValueConvertible) { self = value.sqlValue }
}

extension Int64: SQLValueConvertible {
    /// Decodes integers, booleans, integral decimals and integral doubles.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .integer(let v): self = v
        case .bool(let v): self = v ? 1 : 0
        case .double(let v) where v.rounded() == v && abs(v) < 9.2e18: self = Int64(v)
        case .decimal(let d):
            guard let v = Int64(d.text) else { throw .typeMismatch(sqlValue, to: Int64.self) }
            self = v
        case .text(let t):
            guard let v = Int64(t) else { throw .typeMismatch(sqlValue, to: Int64.self) }
            self = v
        default: throw .typeMismatch(sqlValue, to: Int64.self)
        }
    }
    /// ``SQLValue/integer(_:)``.
    public var sqlValue: SQLValue { .integer(self) }
}

/// Fixed-width integers convert through `Int64` with a range check.
public protocol SQLIntegerConvertible: SQLValueConvertible, FixedWidthInteger {}

extension SQLIntegerConvertible {
    /// Decodes through `Int64`, failing when the value does not fit.
    public init(sqlValue: SQLValue) throws(SQLError) {
        let wide = try Int64(sqlValue: sqlValue)
        guard let narrow = Self(exactly: wide) else { throw .typeMismatch(sqlValue, to: Self.self) }
        self = narrow
    }
    /// ``SQLValue/integer(_:)``; values above `Int64.max` become a decimal.
    public var sqlValue: SQLValue {
        if let wide = Int64(exactly: self) { return .integer(wide) }
        return .decimal(SQLDecimal(String(self))!)
    }
}

extension Int: SQLIntegerConvertible {}
extension Int32: SQLIntegerConvertible {}
extension Int16: SQLIntegerConvertible {}
extension Int8: SQLIntegerConvertible {}
extension UInt32: SQLIntegerConvertible {}
extension UInt16: SQLIntegerConvertible {}
extension UInt8: SQLIntegerConvertible {}

extension UInt64: SQLValueConvertible {
    /// Decodes non-negative integers and integral decimals up to `UInt64.max`.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .integer(let v) where v >= 0: self = UInt64(v)
        case .decimal(let d):
            guard let v = UInt64(d.text) else { throw .typeMismatch(sqlValue, to: UInt64.self) }
            self = v
        case .bool(let v): self = v ? 1 : 0
        default: throw .typeMismatch(sqlValue, to: UInt64.self)
        }
    }
    /// An integer, or a decimal above `Int64.max`.
    public var sqlValue: SQLValue {
        if let wide = Int64(exactly: self) { return .integer(wide) }
        return .decimal(SQLDecimal(String(self))!)
    }
}

extension Double: SQLValueConvertible {
    /// Decodes doubles, integers, decimals and the texts `NaN`, `Infinity`, `-Infinity`.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .double(let v): self = v
        case .integer(let v): self = Double(v)
        case .decimal(let d):
            guard let v = Double(d.text) else { throw .typeMismatch(sqlValue, to: Double.self) }
            self = v
        case .text(let t):
            switch t {
            case "NaN": self = .nan
            case "Infinity", "inf": self = .infinity
            case "-Infinity", "-inf": self = -.infinity
            default:
                guard let v = Double(t) else { throw .typeMismatch(sqlValue, to: Double.self) }
                self = v
            }
        default: throw .typeMismatch(sqlValue, to: Double.self)
        }
    }
    /// ``SQLValue/double(_:)``.
    public var sqlValue: SQLValue { .double(self) }
}

extension Float: SQLValueConvertible {
    /// Decodes through `Double`.
    public init(sqlValue: SQLValue) throws(SQLError) { self = Float(try Double(sqlValue: sqlValue)) }
    /// ``SQLValue/double(_:)``.
    public var sqlValue: SQLValue { .double(Double(self)) }
}

extension Bool: SQLValueConvertible {
    /// Decodes booleans and the integers 0 and 1.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .bool(let v): self = v
        case .integer(0): self = false
        case .integer(1): self = true
        default: throw .typeMismatch(sqlValue, to: Bool.self)
        }
    }
    /// ``SQLValue/bool(_:)``.
    public var sqlValue: SQLValue { .bool(self) }
}

extension String: SQLValueConvertible {
    /// Decodes text only: numbers are not silently turned into strings.
    public init(sqlValue: SQLValue) throws(SQLError) {
        guard case .text(let v) = sqlValue else { throw .typeMismatch(sqlValue, to: String.self) }
        self = v
    }
    /// ``SQLValue/text(_:)``.
    public var sqlValue: SQLValue { .text(self) }
}

extension Array: SQLValueConvertible where Element == UInt8 {
    /// Decodes blobs.
    public init(sqlValue: SQLValue) throws(SQLError) {
        guard case .blob(let v) = sqlValue else { throw .typeMismatch(sqlValue, to: [UInt8].self) }
        self = v
    }
    /// ``SQLValue/blob(_:)``.
    public var sqlValue: SQLValue { .blob(self) }
}

extension Data: SQLValueConvertible {
    /// Decodes blobs.
    public init(sqlValue: SQLValue) throws(SQLError) {
        guard case .blob(let v) = sqlValue else { throw .typeMismatch(sqlValue, to: Data.self) }
        self = Data(v)
    }
    /// ``SQLValue/blob(_:)``.
    public var sqlValue: SQLValue { .blob([UInt8](self)) }
}

extension SQLDate: SQLValueConvertible {
    /// Decodes dates, `YYYY-MM-DD` text, and timestamps at UTC midnight.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .date(let v): self = v
        case .text(let t):
            guard let v = SQLDate(t) else { throw .typeMismatch(sqlValue, to: SQLDate.self) }
            self = v
        case .timestamp(let ts) where ts.microsecondsSinceEpoch % 86_400_000_000 == 0:
            guard let v = ts.utcDate else { throw .typeMismatch(sqlValue, to: SQLDate.self) }
            self = v
        default: throw .typeMismatch(sqlValue, to: SQLDate.self)
        }
    }
    /// ``SQLValue/date(_:)``.
    public var sqlValue: SQLValue { .date(self) }
}

extension SQLTimestamp: SQLValueConvertible {
    /// Decodes timestamps, dates (UTC midnight) and timestamp text.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .timestamp(let v): self = v
        case .date(let d): self = SQLTimestamp(microsecondsSinceEpoch: Int64(d.daysSinceEpoch) * 86_400_000_000)
        case .text(let t):
            guard let v = SQLTimestamp(t) else { throw .typeMismatch(sqlValue, to: SQLTimestamp.self) }
            self = v
        default: throw .typeMismatch(sqlValue, to: SQLTimestamp.self)
        }
    }
    /// ``SQLValue/timestamp(_:)``.
    public var sqlValue: SQLValue { .timestamp(self) }
}

extension Date: SQLValueConvertible {
    /// Decodes whatever ``SQLTimestamp`` decodes.
    public init(sqlValue: SQLValue) throws(SQLError) { self = try SQLTimestamp(sqlValue: sqlValue).date }
    /// ``SQLValue/timestamp(_:)``, rounded to the microsecond.
    public var sqlValue: SQLValue { .timestamp(SQLTimestamp(self)) }
}

extension SQLDecimal: SQLValueConvertible {
    /// Decodes decimals, integers and decimal text (never binary doubles, which are inexact).
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .decimal(let v): self = v
        case .integer(let v): self = SQLDecimal(v)
        case .text(let t):
            guard let v = SQLDecimal(t) else { throw .typeMismatch(sqlValue, to: SQLDecimal.self) }
            self = v
        default: throw .typeMismatch(sqlValue, to: SQLDecimal.self)
        }
    }
    /// ``SQLValue/decimal(_:)``.
    public var sqlValue: SQLValue { .decimal(self) }
}

extension Decimal: SQLValueConvertible {
    /// Decodes through ``SQLDecimal``; fails when the value has more than 38 digits.
    public init(sqlValue: SQLValue) throws(SQLError) {
        guard let v = try SQLDecimal(sqlValue: sqlValue).decimalValue else {
            throw .typeMismatch(sqlValue, to: Decimal.self)
        }
        self = v
    }
    /// ``SQLValue/decimal(_:)``; NaN binds as NULL.
    public var sqlValue: SQLValue { SQLDecimal(self).map { .decimal($0) } ?? .null }
}

extension UUID: SQLValueConvertible {
    /// Decodes text in the canonical form and 16-byte blobs.
    public init(sqlValue: SQLValue) throws(SQLError) {
        switch sqlValue {
        case .text(let t):
            guard let v = UUID(uuidString: t) else { throw .typeMismatch(sqlValue, to: UUID.self) }
            self = v
        case .blob(let b) where b.count == 16:
            self = UUID(
                uuid: (
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                    b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
                ))
        default: throw .typeMismatch(sqlValue, to: UUID.self)
        }
    }
    /// Lower-case canonical text.
    public var sqlValue: SQLValue { .text(uuidString.lowercased()) }
}

extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    /// `nil` for NULL, otherwise the wrapped type's decoding.
    public init(sqlValue: SQLValue) throws(SQLError) {
        self = sqlValue.isNull ? nil : try Wrapped(sqlValue: sqlValue)
    }
    /// NULL for `nil`.
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

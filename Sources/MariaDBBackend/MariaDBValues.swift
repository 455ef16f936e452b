import CMariaDB
import Foundation
import SQLCore

/// What a result column holds, decided once from its field metadata and used
/// by both the text protocol (plain queries) and the binary one (prepared statements).
enum ColumnKind {
    case signedInteger, unsignedInteger, bits, floating, decimal, date, dateTime, bytes, text, null

    init(_ field: MYSQL_FIELD) {
        let unsigned = field.flags & UInt32(UNSIGNED_FLAG) != 0
        switch field.type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_INT24, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR:
            self = unsigned ? .unsignedInteger : .signedInteger
        case MYSQL_TYPE_BIT: self = .bits
        case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE: self = .floating
        case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL: self = .decimal
        case MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE: self = .date
        case MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP, MYSQL_TYPE_DATETIME2, MYSQL_TYPE_TIMESTAMP2: self = .dateTime
        case MYSQL_TYPE_NULL: self = .null
        default:
            self = field.charsetnr == clustersql_mysql_binary_charset ? .bytes : .text
        }
    }

    /// A value from its text form (text protocol, and binary-protocol strings).
    func value(text bytes: UnsafeBufferPointer<UInt8>) -> SQLValue {
        let string = String(decoding: bytes, as: UTF8.self)
        switch self {
        case .null: return .null
        case .signedInteger: return Int64(string).map(SQLValue.integer) ?? .text(string)
        case .unsignedInteger: return UInt64(string).map(Self.value(unsigned:)) ?? .text(string)
        case .bits: return Self.value(bits: bytes)
        case .floating: return Double(string).map(SQLValue.double) ?? .text(string)
        case .decimal: return SQLDecimal(string).map(SQLValue.decimal) ?? .text(string)
        case .date: return SQLDate(string).map(SQLValue.date) ?? .text(string)
        case .dateTime: return SQLTimestamp(string).map(SQLValue.timestamp) ?? .text(string)
        case .bytes: return .blob(Array(bytes))
        case .text: return .text(string)
        }
    }

    /// An unsigned integer: above `Int64.max` it stays exact as a decimal.
    static func value(unsigned: UInt64) -> SQLValue {
        unsigned <= UInt64(Int64.max) ? .integer(Int64(unsigned)) : .decimal(SQLDecimal(String(unsigned))!)
    }

    /// A `BIT(n)` value: big-endian bytes.
    static func value(bits: UnsafeBufferPointer<UInt8>) -> SQLValue {
        value(unsigned: bits.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// How a prepared statement's result binds this column.
    var bindType: enum_field_types {
        switch self {
        case .signedInteger, .unsignedInteger: MYSQL_TYPE_LONGLONG
        case .floating: MYSQL_TYPE_DOUBLE
        case .date, .dateTime: MYSQL_TYPE_DATETIME
        case .null: MYSQL_TYPE_NULL
        case .bits, .bytes: MYSQL_TYPE_BLOB
        case .decimal, .text: MYSQL_TYPE_STRING
        }
    }
}

/// One parameter as Connector/C's binary protocol takes it: a fixed-size C
/// value, or bytes (text, blob, decimal text), and its `MYSQL_TYPE_*`.
enum ParameterValue {
    case null
    case integer(Int64)
    case double(Double)
    case tiny(Int8)
    case time(MYSQL_TIME, enum_field_types)
    case bytes(ParameterBytes, enum_field_types)

    /// The value's C form; a double that is not finite, or a timestamp outside MariaDB's range, is a `SQLError.Code.typeMismatch`.
    init(_ value: SQLValue) throws(SQLError) {
        switch value {
        case .null: self = .null
        case .integer(let v): self = .integer(v)
        case .double(let v):
            guard v.isFinite else {
                throw SQLError(.typeMismatch, message: "MariaDB stores no infinite or NaN doubles", backend: "mariadb")
            }
            self = .double(v)
        case .bool(let v): self = .tiny(v ? 1 : 0)
        case .text(let v): self = .bytes(.text(v), MYSQL_TYPE_STRING)
        case .blob(let v): self = .bytes(.blob(v), MYSQL_TYPE_BLOB)
        case .decimal(let v): self = .bytes(.text(v.text), MYSQL_TYPE_NEWDECIMAL)
        case .date(let v):
            self = .time(Self.time(v, hour: 0, minute: 0, second: 0, micros: 0, type: MYSQL_TIMESTAMP_DATE), MYSQL_TYPE_DATE)
        case .timestamp(let v):
            let micros = v.microsecondsSinceEpoch
            let days = micros >= 0 ? micros / 86_400_000_000 : (micros - 86_399_999_999) / 86_400_000_000
            let inDay = micros - days * 86_400_000_000
            guard let date = SQLDate(daysSinceEpoch: Int(days)) else {
                throw SQLError(.typeMismatch, message: "the timestamp is out of MariaDB's range", backend: "mariadb")
            }
            let seconds = Int(inDay / 1_000_000)
            self = .time(
                Self.time(
                    date, hour: seconds / 3600, minute: seconds / 60 % 60, second: seconds % 60,
                    micros: Int(inDay % 1_000_000), type: MYSQL_TIMESTAMP_DATETIME), MYSQL_TYPE_DATETIME)
        }
    }

    /// The `MYSQL_TYPE_*` it is bound as.
    var bufferType: enum_field_types {
        switch self {
        case .null: MYSQL_TYPE_NULL
        case .integer: MYSQL_TYPE_LONGLONG
        case .double: MYSQL_TYPE_DOUBLE
        case .tiny: MYSQL_TYPE_TINY
        case .time(_, let type), .bytes(_, let type): type
        }
    }

    private static func time(
        _ date: SQLDate, hour: Int, minute: Int, second: Int, micros: Int, type: enum_mysql_timestamp_type
    ) -> MYSQL_TIME {
        var time = MYSQL_TIME()
        time.year = UInt32(clamping: date.year)
        time.month = UInt32(date.month)
        time.day = UInt32(date.day)
        time.hour = UInt32(hour)
        time.minute = UInt32(minute)
        time.second = UInt32(second)
        time.second_part = UInt(micros)
        time.time_type = type
        return time
    }
}

/// A variable-length parameter's bytes, kept in the caller's own storage until copied into a bind buffer.
enum ParameterBytes {
    case text(String)
    case blob([UInt8])

    /// How many bytes.
    var count: Int {
        switch self {
        case .text(let v): v.utf8.count
        case .blob(let v): v.count
        }
    }

    /// Copies the bytes to `destination`, which has room for ``count``.
    func copy(to destination: UnsafeMutableRawPointer) {
        let buffer = UnsafeMutableRawBufferPointer(start: destination, count: count)
        switch self {
        case .text(let v):
            var v = v
            v.withUTF8 { buffer.copyMemory(from: UnsafeRawBufferPointer($0)) }
        case .blob(let v): v.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }
}

/// The `MYSQL_BIND` array of a prepared statement's parameters or results,
/// with every buffer it points to; freed together.
final class BindSet {
    let count: Int
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    private let lengths: UnsafeMutablePointer<UInt>
    private let nulls: UnsafeMutablePointer<my_bool>
    private let errors: UnsafeMutablePointer<my_bool>
    private var buffers: [UnsafeMutableRawPointer?]
    private let kinds: [ColumnKind]

    private init(count: Int, kinds: [ColumnKind]) {
        self.count = count
        self.kinds = kinds
        binds = .allocate(capacity: max(count, 1))
        binds.initialize(repeating: MYSQL_BIND(), count: max(count, 1))
        lengths = .allocate(capacity: max(count, 1))
        lengths.initialize(repeating: 0, count: max(count, 1))
        nulls = .allocate(capacity: max(count, 1))
        nulls.initialize(repeating: 0, count: max(count, 1))
        errors = .allocate(capacity: max(count, 1))
        errors.initialize(repeating: 0, count: max(count, 1))
        buffers = Array(repeating: nil, count: count)
    }

    deinit {
        buffers.forEach { free($0) }
        binds.deallocate()
        lengths.deallocate()
        nulls.deallocate()
        errors.deallocate()
    }

    @discardableResult
    private func allocate(_ index: Int, bytes: Int) -> UnsafeMutableRawPointer {
        let buffer = malloc(max(bytes, 1))!
        buffers[index] = buffer
        binds[index].buffer = buffer
        binds[index].buffer_length = UInt(bytes)
        return buffer
    }

    // MARK: parameters

    /// Binds `values` as typed parameters (never spliced into SQL).
    static func parameters(_ values: [SQLValue]) throws(SQLError) -> BindSet {
        let set = BindSet(count: values.count, kinds: [])
        for (index, value) in values.enumerated() {
            try set.bind(value, at: index)
        }
        return set
    }

    private func bind(_ value: SQLValue, at index: Int) throws(SQLError) {
        let parameter = try ParameterValue(value)
        binds[index].buffer_type = parameter.bufferType
        switch parameter {
        case .null: break
        case .integer(let v): allocate(index, bytes: 8).storeBytes(of: v, as: Int64.self)
        case .double(let v): allocate(index, bytes: 8).storeBytes(of: v, as: Double.self)
        case .tiny(let v): allocate(index, bytes: 1).storeBytes(of: v, as: Int8.self)
        case .time(let v, _): allocate(index, bytes: MemoryLayout<MYSQL_TIME>.size).storeBytes(of: v, as: MYSQL_TIME.self)
        case .bytes(let bytes, _):
            let count = bytes.count
            let buffer = allocate(index, bytes: count)
            bytes.copy(to: buffer)
        }
    }

    // MARK: results

    /// Result binds for `fields`, sized by their `max_length` (known after
    /// `mysql_stmt_store_result` with `STMT_ATTR_UPDATE_MAX_LENGTH`).
    static func results(_ fields: UnsafeBufferPointer<MYSQL_FIELD>) -> BindSet {
        let kinds = fields.map(ColumnKind.init)
        let set = BindSet(count: fields.count, kinds: kinds)
        for (index, kind) in kinds.enumerated() {
            let type = kind.bindType
            let size: Int
            switch type {
            case MYSQL_TYPE_LONGLONG, MYSQL_TYPE_DOUBLE: size = 8
            case MYSQL_TYPE_DATETIME: size = MemoryLayout<MYSQL_TIME>.size
            case MYSQL_TYPE_NULL: size = 0
            default: size = Int(max(fields[index].max_length, 1))
            }
            _ = set.allocate(index, bytes: size)
            set.binds[index].buffer_type = type
            set.binds[index].is_unsigned = kind == .unsignedInteger ? 1 : 0
            set.binds[index].length = set.lengths + index
            set.binds[index].is_null = set.nulls + index
            set.binds[index].error = set.errors + index
        }
        return set
    }

    /// Whether these result buffers still suit `fields`: same kinds, and every
    /// variable-length value of the stored result fits its buffer.
    func fits(_ fields: UnsafeBufferPointer<MYSQL_FIELD>) -> Bool {
        guard fields.count == count else { return false }
        for (index, field) in fields.enumerated() {
            let kind = ColumnKind(field)
            guard kind == kinds[index] else { return false }
            switch kind.bindType {
            case MYSQL_TYPE_STRING, MYSQL_TYPE_BLOB:
                if field.max_length > binds[index].buffer_length { return false }
            default: break
            }
        }
        return true
    }

    /// Appends the values of the row just fetched into the result buffers.
    func readRow(into rows: inout SQLRowsBuilder) {
        for index in 0..<count { rows.append(value(at: index)) }
    }

    private func value(at index: Int) -> SQLValue {
        guard nulls[index] == 0, let buffer = buffers[index] else { return .null }
        switch kinds[index] {
        case .null: return .null
        case .signedInteger: return .integer(buffer.load(as: Int64.self))
        case .unsignedInteger: return ColumnKind.value(unsigned: buffer.load(as: UInt64.self))
        case .floating: return .double(buffer.load(as: Double.self))
        case .date, .dateTime: return Self.value(buffer.load(as: MYSQL_TIME.self), dateOnly: kinds[index] == .date)
        case .bits, .bytes, .decimal, .text:
            let length = min(Int(lengths[index]), Int(binds[index].buffer_length))
            return kinds[index].value(text: UnsafeBufferPointer(start: buffer.assumingMemoryBound(to: UInt8.self), count: length))
        }
    }

    private static func value(_ time: MYSQL_TIME, dateOnly: Bool) -> SQLValue {
        guard let date = SQLDate(year: Int(time.year), month: Int(time.month), day: Int(time.day)) else {
            // MariaDB's zero dates (0000-00-00) have no calendar day.
            return .text(String(format: "%04u-%02u-%02u", time.year, time.month, time.day))
        }
        if dateOnly { return .date(date) }
        let seconds = Int64(date.daysSinceEpoch) * 86_400 + Int64(time.hour) * 3600 + Int64(time.minute) * 60 + Int64(time.second)
        return .timestamp(SQLTimestamp(microsecondsSinceEpoch: seconds * 1_000_000 + Int64(time.second_part)))
    }
}

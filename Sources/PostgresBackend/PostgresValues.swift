import SQLCore

/// Parameters go to PostgreSQL as text (type left for the server to infer)
/// except blobs, which go as binary `bytea`. Results come back as text and are
/// decoded by their type OID.
enum PostgresValues {
    /// One encoded parameter: bytes (nil for NULL), type OID, format (0 text, 1 binary).
    struct Parameter {
        var bytes: [UInt8]?
        var type: UInt32
        var format: Int32
    }

    static func encode(_ value: SQLValue) throws(SQLError) -> Parameter {
        switch value {
        case .null: return Parameter(bytes: nil, type: 0, format: 0)
        case .integer(let v): return text(String(v))
        case .double(let v):
            if v.isNaN { return text("NaN") }
            if v.isInfinite { return text(v > 0 ? "Infinity" : "-Infinity") }
            return text(String(v))
        case .text(let v):
            guard !v.utf8.contains(0) else {
                throw SQLError(.typeMismatch, message: "PostgreSQL text cannot hold a NUL character; bind it as a blob", backend: "postgres")
            }
            return text(v)
        case .blob(let bytes): return Parameter(bytes: bytes, type: 17, format: 1)
        case .bool(let v): return text(v ? "t" : "f")
        case .date(let v): return text(v.description)
        case .timestamp(let v): return text(v.description + "+00")
        case .decimal(let v): return text(v.text)
        }
    }

    private static func text(_ string: String) -> Parameter {
        Parameter(bytes: Array(string.utf8), type: 0, format: 0)
    }

    /// Decodes a text-format value of type `oid`.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, oid: UInt32) -> SQLValue {
        let text = String(decoding: bytes, as: UTF8.self)
        switch oid {
        case 16: return .bool(text == "t")
        case 20, 21, 23, 26: return Int64(text).map(SQLValue.integer) ?? .text(text)
        case 700, 701:
            switch text {
            case "NaN": return .double(.nan)
            case "Infinity": return .double(.infinity)
            case "-Infinity": return .double(-.infinity)
            default: return Double(text).map(SQLValue.double) ?? .text(text)
            }
        case 1700: return SQLDecimal(text).map(SQLValue.decimal) ?? (text == "NaN" ? .double(.nan) : .text(text))
        case 17: return decodeByteaHex(bytes).map(SQLValue.blob) ?? .text(text)
        case 1082: return SQLDate(text).map(SQLValue.date) ?? .text(text)
        case 1114, 1184: return SQLTimestamp(text).map(SQLValue.timestamp) ?? .text(text)
        default: return .text(text)
        }
    }

    /// `\x0a1b...` (bytea_output = hex, the default since PostgreSQL 9.0).
    static func decodeByteaHex(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"), bytes.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count - 2) / 2)
        var i = 2
        while i < bytes.count {
            guard let high = hexValue(bytes[i]), let low = hexValue(bytes[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

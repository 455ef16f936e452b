import SQLCore

/// Results come back from PostgreSQL as text and are decoded by their type
/// OID (parameters go out through ``PostgresParameters``).
enum PostgresValues {
    /// Decodes a text-format value of type `oid`.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, oid: UInt32) -> SQLValue {
        if oid == 20 || oid == 21 || oid == 23, let integer = integer(bytes) { return .integer(integer) }
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

    /// A decimal integer read straight from the bytes (no String made); `nil` when it is not one or overflows.
    static func integer(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        let negative = bytes[0] == UInt8(ascii: "-")
        let digits = negative ? bytes.dropFirst() : bytes[...]
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            magnitude = magnitude * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
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

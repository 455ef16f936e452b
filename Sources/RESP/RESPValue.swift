import NIOCore

/// One value of the Redis serialization protocol, RESP2 or RESP3.
///
/// Strings that may hold any bytes (bulk and verbatim strings, bulk errors)
/// are `ByteBuffer`s, so values with NUL or CRLF inside round-trip exactly.
public enum RESPValue: Sendable, Hashable {
    /// `+OK`: a short status line.
    case simpleString(String)
    /// `-ERR ...` (RESP2 and RESP3) or `!len` (a RESP3 bulk error): an error reply, whole.
    case error(String)
    /// `:42`.
    case integer(Int64)
    /// `$len`: bytes; `nil` is RESP2's null bulk string, `$-1`.
    case bulkString(ByteBuffer?)
    /// `*len`: values; `nil` is RESP2's null array, `*-1`.
    case array([RESPValue]?)
    /// `_`: RESP3's null.
    case null
    /// `#t` / `#f`.
    case boolean(Bool)
    /// `,3.14` (also `inf`, `-inf`, `nan`).
    case double(Double)
    /// `(12345678901234567890`: an integer of any size, as its decimal digits.
    case bigNumber(String)
    /// `=len` `txt:...`: text with a three-letter format.
    case verbatimString(format: String, text: ByteBuffer)
    /// `%len`: key/value pairs, in the server's order.
    case map([RESPPair])
    /// `~len`: unordered distinct values, in the server's order.
    case set([RESPValue])
    /// `>len`: out-of-band data (pub/sub messages, invalidations) in RESP3.
    case push([RESPValue])

    /// A bulk string of `text`'s UTF-8 bytes.
    public static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// Whether the value is a null of any protocol version.
    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): true
        default: false
        }
    }

    /// The value as text, for the string-like cases (simple, bulk, verbatim, big number); `nil` otherwise.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): text
        case .bulkString(let bytes?): String(buffer: bytes)
        case .verbatimString(_, let text): String(buffer: text)
        default: nil
        }
    }

    /// The elements of an array, set or push; `nil` otherwise.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values?), .set(let values), .push(let values): values
        default: nil
        }
    }
}

/// One key/value pair of a RESP3 map.
public struct RESPPair: Sendable, Hashable {
    /// The key.
    public var key: RESPValue
    /// The value.
    public var value: RESPValue

    /// Creates a pair.
    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}

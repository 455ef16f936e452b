import NIOCore

/// How much a decoder accepts before it calls a reply malformed. Every length
/// a server sends is checked against these before anything is allocated or
/// awaited, so a broken or hostile server cannot make the client buffer
/// without bound or recurse without end.
public struct RESPDecoderLimits: Sendable, Hashable {
    /// The longest bulk string, verbatim string or bulk error. Default 512 MiB (Redis's own `proto-max-bulk-len`).
    public var maxBulkLength: Int = 512 * 1024 * 1024
    /// The most elements in one array, set, push or map (pairs count twice). Default 2^24.
    public var maxAggregateCount: Int = 1 << 24
    /// The deepest nesting of aggregates. Default 32.
    public var maxDepth: Int = 32
    /// The longest simple line (status, error, number), without its CRLF. Default 64 KiB.
    public var maxLineLength: Int = 64 * 1024

    /// The defaults.
    public init() {}
}

/// A reply that breaks the protocol or the limits; the connection that read it cannot be trusted any more.
public struct RESPDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public enum Reason: Sendable, Hashable {
        /// A type byte RESP does not define.
        case unknownType
        /// A length or count that is negative (other than a null's -1) or not a number.
        case invalidLength
        /// A bulk value longer than ``RESPDecoderLimits/maxBulkLength``.
        case bulkTooLarge
        /// An aggregate with more elements than ``RESPDecoderLimits/maxAggregateCount``.
        case aggregateTooLarge
        /// Aggregates nested deeper than ``RESPDecoderLimits/maxDepth``.
        case tooDeep
        /// A line longer than ``RESPDecoderLimits/maxLineLength``.
        case lineTooLong
        /// A line that is not what its type needs (a number that is not one, a boolean other than t or f, a CR without LF).
        case malformed
        /// A bulk value not followed by CRLF.
        case missingTerminator
        /// The connection ended in the middle of a reply.
        case truncated
    }

    /// What was wrong.
    public var reason: Reason
    /// Details, with the offending bytes shown escaped and cut short.
    public var message: String

    /// Creates an error.
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// `RESP <reason>: <message>`.
    public var description: String { "RESP \(reason): \(message)" }
}

/// Parses RESP2 and RESP3 values out of a buffer, incrementally: a value that
/// has not fully arrived leaves the buffer untouched.
public struct RESPParser: Sendable {
    /// The limits applied.
    public let limits: RESPDecoderLimits

    /// Creates a parser.
    public init(limits: RESPDecoderLimits = .init()) {
        self.limits = limits
    }

    /// The next complete value, consumed from `buffer`; `nil` (and `buffer`
    /// unchanged) when it has not fully arrived. RESP3 attributes are read and dropped.
    public func parse(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        var copy = buffer
        guard let value = try value(&copy, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: copy.readerIndex)
        return value
    }

    private func value(_ buffer: inout ByteBuffer, depth: Int) throws(RESPDecodingError) -> RESPValue? {
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return try line(&buffer).map { .simpleString(String(buffer: $0)) }
        case UInt8(ascii: "-"):
            return try line(&buffer).map { .error(String(buffer: $0)) }
        case UInt8(ascii: ":"):
            guard let text = try line(&buffer) else { return nil }
            return .integer(try integer(text))
        case UInt8(ascii: "$"):
            return try bulk(&buffer, allowNull: true).map { .bulkString($0 ?? nil) }
        case UInt8(ascii: "!"):
            return try bulk(&buffer, allowNull: false).map { .error(String(buffer: $0 ?? ByteBuffer())) }
        case UInt8(ascii: "="):
            guard let bytes = try bulk(&buffer, allowNull: false), var text = bytes else { return nil }
            guard text.readableBytes >= 4, text.getInteger(at: text.readerIndex + 3, as: UInt8.self) == UInt8(ascii: ":") else {
                throw RESPDecodingError(.malformed, "a verbatim string without its `fmt:` prefix")
            }
            let format = text.readString(length: 3) ?? ""
            text.moveReaderIndex(forwardBy: 1)
            return .verbatimString(format: format, text: text)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try count(&buffer, allowNull: type == UInt8(ascii: "*"), multiplier: 1) else { return nil }
            guard let count else { return .array(nil) }
            guard let values = try elements(count, &buffer, depth: depth) else { return nil }
            switch type {
            case UInt8(ascii: "*"): return .array(values)
            case UInt8(ascii: "~"): return .set(values)
            default: return .push(values)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try count(&buffer, allowNull: false, multiplier: 2), let count else { return nil }
            guard let values = try elements(count * 2, &buffer, depth: depth) else { return nil }
            if type == UInt8(ascii: "|") {
                // Attributes describe the reply that follows; it is the value.
                return try value(&buffer, depth: depth)
            }
            return .map(stride(from: 0, to: values.count, by: 2).map { RESPPair(key: values[$0], value: values[$0 + 1]) })
        case UInt8(ascii: "_"):
            guard let text = try line(&buffer) else { return nil }
            guard text.readableBytes == 0 else { throw RESPDecodingError(.malformed, "a null with content \(shown(text))") }
            return .null
        case UInt8(ascii: "#"):
            guard let text = try line(&buffer) else { return nil }
            switch String(buffer: text) {
            case "t": return .boolean(true)
            case "f": return .boolean(false)
            default: throw RESPDecodingError(.malformed, "a boolean \(shown(text)), not t or f")
            }
        case UInt8(ascii: ","):
            guard let text = try line(&buffer) else { return nil }
            return .double(try double(text))
        case UInt8(ascii: "("):
            guard let text = try line(&buffer) else { return nil }
            let digits = String(buffer: text)
            let body = digits.first == "-" || digits.first == "+" ? digits.dropFirst() : Substring(digits)
            guard !body.isEmpty, body.allSatisfy(\.isASCII), body.allSatisfy(\.isNumber) else {
                throw RESPDecodingError(.malformed, "a big number \(shown(text))")
            }
            return .bigNumber(digits)
        default:
            throw RESPDecodingError(.unknownType, "type byte 0x\(String(type, radix: 16)) is not RESP")
        }
    }

    /// The bytes up to the next CRLF (consumed); `nil` until the CRLF has arrived.
    private func line(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> ByteBuffer? {
        let limit = limits.maxLineLength
        // A plain scan of the contiguous bytes: lines are short, and the generic
        // collection path cost more than the scan itself.
        let found = buffer.withUnsafeReadableBytes { raw -> Int? in
            let end = min(raw.count, limit + 1)
            var index = 0
            while index < end {
                if raw[index] == 0x0D { return index }
                index += 1
            }
            return nil
        }
        guard let length = found else {
            if buffer.readableBytes > limit {
                throw RESPDecodingError(.lineTooLong, "no CRLF within \(limit) bytes")
            }
            return nil
        }
        guard let next = buffer.getInteger(at: buffer.readerIndex + length + 1, as: UInt8.self) else { return nil }
        guard next == 0x0A else { throw RESPDecodingError(.malformed, "a CR not followed by LF") }
        let text = buffer.readSlice(length: length)
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    /// The decimal integer `text` holds (an optional sign, then digits), read
    /// straight from the bytes: every reply header has one, so no String is made.
    private func integer(_ text: ByteBuffer) throws(RESPDecodingError) -> Int64 {
        let number = text.withUnsafeReadableBytes { raw -> Int64? in
            var index = 0
            let negative = raw.first == UInt8(ascii: "-")
            if negative || raw.first == UInt8(ascii: "+") { index = 1 }
            guard index < raw.count else { return nil }
            var magnitude: UInt64 = 0
            while index < raw.count {
                let digit = raw[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
                guard !overflow1, !overflow2 else { return nil }
                magnitude = sum
                index += 1
            }
            if negative {
                return magnitude <= UInt64(Int64.max) + 1 ? Int64(bitPattern: 0 &- magnitude) : nil
            }
            return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
        }
        guard let number else { throw RESPDecodingError(.malformed, "an integer \(shown(text))") }
        return number
    }

    private func double(_ text: ByteBuffer) throws(RESPDecodingError) -> Double {
        switch String(buffer: text) {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        case let other:
            guard let number = Double(other), number.isFinite else { throw RESPDecodingError(.malformed, "a double \(shown(text))") }
            return number
        }
    }

    /// A length-prefixed value; the outer `nil` means "not arrived yet", an inner `nil` a null (`$-1`).
    private func bulk(_ buffer: inout ByteBuffer, allowNull: Bool) throws(RESPDecodingError) -> ByteBuffer?? {
        guard let text = try line(&buffer) else { return nil }
        let length = try integer(text)
        if length == -1, allowNull { return .some(nil) }
        guard length >= 0 else { throw RESPDecodingError(.invalidLength, "a bulk length of \(length)") }
        guard length <= limits.maxBulkLength else {
            throw RESPDecodingError(.bulkTooLarge, "a bulk of \(length) bytes, over the limit of \(limits.maxBulkLength)")
        }
        guard buffer.readableBytes >= Int(length) + 2 else { return nil }
        let bytes = buffer.readSlice(length: Int(length))!
        guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
            throw RESPDecodingError(.missingTerminator, "a bulk of \(length) bytes not followed by CRLF")
        }
        return .some(bytes)
    }

    /// An aggregate's count; the outer `nil` means "not arrived yet", an inner `nil` a null (`*-1`).
    private func count(_ buffer: inout ByteBuffer, allowNull: Bool, multiplier: Int) throws(RESPDecodingError) -> Int?? {
        guard let text = try line(&buffer) else { return nil }
        let count = try integer(text)
        if count == -1, allowNull { return .some(nil) }
        guard count >= 0 else { throw RESPDecodingError(.invalidLength, "an aggregate count of \(count)") }
        guard count <= Int64(limits.maxAggregateCount / multiplier) else {
            throw RESPDecodingError(.aggregateTooLarge, "an aggregate of \(count) elements, over the limit of \(limits.maxAggregateCount)")
        }
        return .some(Int(count))
    }

    private func elements(_ count: Int, _ buffer: inout ByteBuffer, depth: Int) throws(RESPDecodingError) -> [RESPValue]? {
        guard depth < limits.maxDepth else { throw RESPDecodingError(.tooDeep, "aggregates nested deeper than \(limits.maxDepth)") }
        var values: [RESPValue] = []
        values.reserveCapacity(min(count, 1024))  // the count is the server's word: grow as elements arrive
        for _ in 0..<count {
            guard let element = try value(&buffer, depth: depth + 1) else { return nil }
            values.append(element)
        }
        return values
    }

    private func shown(_ bytes: ByteBuffer) -> String {
        let text = String(decoding: bytes.readableBytesView.prefix(40), as: UTF8.self)
        return "\"" + text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined() + (bytes.readableBytes > 40 ? "…" : "") + "\""
    }
}

/// Decodes RESP values in a channel pipeline.
public struct RESPDecoder: ByteToMessageDecoder, Sendable {
    /// Each complete value.
    public typealias InboundOut = RESPValue

    private let parser: RESPParser

    /// Creates a decoder with `limits`.
    public init(limits: RESPDecoderLimits = .init()) {
        self.parser = RESPParser(limits: limits)
    }

    /// Passes on the next value once it has fully arrived.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    /// At the end of the stream: the values that arrived whole, then an error if a reply was cut short.
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0, seenEOF {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw RESPDecodingError(.truncated, "the connection ended \(pending) bytes into a reply")
        }
        return .needMoreData
    }
}

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
package struct RESPDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    package enum Reason: Sendable, Hashable {
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
    package var reason: Reason
    /// Details, with the offending bytes shown escaped and cut short.
    package var message: String

    /// Creates an error.
    package init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// `RESP <reason>: <message>`.
    package var description: String { "RESP \(reason): \(message)" }
}

/// Parses RESP2 and RESP3 values out of a buffer, incrementally and resumably.
///
/// A scalar (a line, a bulk string) is consumed only once it has fully
/// arrived. An aggregate is consumed element by element as its elements
/// arrive: the parser keeps the elements read so far and, on the next call,
/// goes on from the first one missing, so a large reply that arrives in many
/// reads is parsed once in all (O(n)), never from its start again.
package struct RESPParser: Sendable {
    /// The limits applied.
    package let limits: RESPDecoderLimits
    /// The aggregates begun and not complete yet, outermost first.
    private var open: [Aggregate] = []
    /// An attribute was read and the value it describes has not arrived yet.
    private var awaitingAttributedValue = false

    /// An aggregate whose header has been read, with the elements read so far.
    private struct Aggregate: Sendable {
        enum Kind: Sendable {
            case array, set, push, map
            /// RESP3 attributes: read, then dropped; the value after them stands in their place.
            case attribute
        }

        var kind: Kind
        /// Elements still to come (a map's and an attribute's pairs count twice).
        var remaining: Int
        var elements: [RESPValue]

        /// The finished value (not for attributes).
        func value() -> RESPValue {
            switch kind {
            case .array: .array(elements)
            case .set: .set(elements)
            case .push: .push(elements)
            case .map, .attribute:
                .map(stride(from: 0, to: elements.count, by: 2).map { RESPPair(key: elements[$0], value: elements[$0 + 1]) })
            }
        }
    }

    /// One complete thing read from the buffer.
    private enum Item {
        case value(RESPValue)
        case aggregate(Aggregate.Kind, count: Int)
    }

    /// Creates a parser.
    package init(limits: RESPDecoderLimits = .init()) {
        self.limits = limits
    }

    /// Whether part of a value has been consumed and the rest is awaited.
    package var isInsideValue: Bool { !open.isEmpty || awaitingAttributedValue }

    /// The next complete value; `nil` when it has not fully arrived. What has
    /// arrived of it whole (complete elements of an aggregate) is consumed and
    /// kept; the bytes of an incomplete scalar stay in `buffer` for the next
    /// call, which must pass them again with what followed. RESP3 attributes
    /// are read and dropped.
    package mutating func parse(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        while true {
            var copy = buffer
            guard let item = try item(&copy) else { return nil }
            buffer.moveReaderIndex(to: copy.readerIndex)
            var finished: RESPValue
            switch item {
            case .value(let value):
                finished = value
            case .aggregate(let kind, let count):
                guard open.count < limits.maxDepth else {
                    throw RESPDecodingError(.tooDeep, "aggregates nested deeper than \(limits.maxDepth)")
                }
                let aggregate = Aggregate(kind: kind, remaining: count, elements: [])
                guard count == 0 else {
                    open.append(aggregate)
                    open[open.count - 1].elements.reserveCapacity(min(count, 1024))  // the count is the server's word
                    continue
                }
                if kind == .attribute {
                    awaitingAttributedValue = awaitingAttributedValue || open.isEmpty
                    continue
                }
                finished = aggregate.value()
            }
            // Hand the finished value to the aggregate it belongs to, closing those it completes.
            var complete: RESPValue? = finished
            while !open.isEmpty {
                let last = open.count - 1
                open[last].elements.append(finished)
                open[last].remaining -= 1
                guard open[last].remaining == 0 else {
                    complete = nil
                    break
                }
                let done = open.removeLast()
                guard done.kind != .attribute else {  // dropped: the value after it takes its place
                    if open.isEmpty { awaitingAttributedValue = true }
                    complete = nil
                    break
                }
                finished = done.value()
                complete = finished
            }
            if open.isEmpty, let complete {
                awaitingAttributedValue = false
                return complete
            }
        }
    }

    /// A complete scalar or an aggregate's header from `buffer`; `nil` until it has fully arrived.
    private func item(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> Item? {
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return try line(&buffer).map { .value(.simpleString(String(buffer: $0))) }
        case UInt8(ascii: "-"):
            return try line(&buffer).map { .value(.error(String(buffer: $0))) }
        case UInt8(ascii: ":"):
            guard let text = try line(&buffer) else { return nil }
            return .value(.integer(try integer(text)))
        case UInt8(ascii: "$"):
            return try bulk(&buffer, allowNull: true).map { .value(.bulkString($0 ?? nil)) }
        case UInt8(ascii: "!"):
            return try bulk(&buffer, allowNull: false).map { .value(.error(String(buffer: $0 ?? ByteBuffer()))) }
        case UInt8(ascii: "="):
            guard let bytes = try bulk(&buffer, allowNull: false), var text = bytes else { return nil }
            guard text.readableBytes >= 4, text.getInteger(at: text.readerIndex + 3, as: UInt8.self) == UInt8(ascii: ":") else {
                throw RESPDecodingError(.malformed, "a verbatim string without its `fmt:` prefix")
            }
            let format = text.readString(length: 3) ?? ""
            text.moveReaderIndex(forwardBy: 1)
            return .value(.verbatimString(format: format, text: text))
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try count(&buffer, allowNull: type == UInt8(ascii: "*"), multiplier: 1) else { return nil }
            guard let count else { return .value(.array(nil)) }
            let kind: Aggregate.Kind = type == UInt8(ascii: "*") ? .array : type == UInt8(ascii: "~") ? .set : .push
            return .aggregate(kind, count: count)
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try count(&buffer, allowNull: false, multiplier: 2), let count else { return nil }
            return .aggregate(type == UInt8(ascii: "|") ? .attribute : .map, count: count * 2)
        case UInt8(ascii: "_"):
            guard let text = try line(&buffer) else { return nil }
            guard text.readableBytes == 0 else { throw RESPDecodingError(.malformed, "a null with content \(shown(text))") }
            return .value(.null)
        case UInt8(ascii: "#"):
            guard let text = try line(&buffer) else { return nil }
            switch String(buffer: text) {
            case "t": return .value(.boolean(true))
            case "f": return .value(.boolean(false))
            default: throw RESPDecodingError(.malformed, "a boolean \(shown(text)), not t or f")
            }
        case UInt8(ascii: ","):
            guard let text = try line(&buffer) else { return nil }
            return .value(.double(try double(text)))
        case UInt8(ascii: "("):
            guard let text = try line(&buffer) else { return nil }
            let digits = String(buffer: text)
            let body = digits.first == "-" || digits.first == "+" ? digits.dropFirst() : Substring(digits)
            guard !body.isEmpty, body.allSatisfy(\.isASCII), body.allSatisfy(\.isNumber) else {
                throw RESPDecodingError(.malformed, "a big number \(shown(text))")
            }
            return .value(.bigNumber(digits))
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

    private func shown(_ bytes: ByteBuffer) -> String {
        let text = String(decoding: bytes.readableBytesView.prefix(40), as: UTF8.self)
        return "\"" + text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined() + (bytes.readableBytes > 40 ? "…" : "") + "\""
    }
}

/// Decodes RESP values in a channel pipeline.
package struct RESPDecoder: ByteToMessageDecoder, Sendable {
    /// Each complete value.
    package typealias InboundOut = RESPValue

    private var parser: RESPParser

    /// Creates a decoder with `limits`.
    package init(limits: RESPDecoderLimits = .init()) {
        self.parser = RESPParser(limits: limits)
    }

    /// Passes on the next value once it has fully arrived.
    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    /// At the end of the stream: the values that arrived whole, then an error if a reply was cut short.
    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 || parser.isInsideValue, seenEOF {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw RESPDecodingError(
                .truncated, "the connection ended in the middle of a reply (\(pending) bytes of an unfinished value left)")
        }
        return .needMoreData
    }
}

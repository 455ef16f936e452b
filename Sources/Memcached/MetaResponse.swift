import NIOCore

/// One reply line of memcached (with its value, for `VA`).
package enum MetaResponse: Sendable, Hashable {
    /// `VA size flags*` and the value's bytes: a hit of `mg v`, or `ma v`'s number.
    case value(ByteBuffer, MetaFlags)
    /// `HD`, `NS`, `EX`, `NF`, `EN` or `MN`, with its flags.
    case status(MetaStatus, MetaFlags)
    /// `VERSION text`.
    case version(String)
    /// `OK` (`flush_all`).
    case ok
    /// `STAT name value`.
    case stat(name: String, value: String)
    /// `END`, after the `STAT` lines.
    case end
    /// `ERROR`, `CLIENT_ERROR text` or `SERVER_ERROR text`.
    case error(MetaErrorKind, String)
}

/// The two-letter status of a meta reply.
package enum MetaStatus: String, Sendable, Hashable {
    /// Success, no value (`HD`).
    case stored = "HD"
    /// Not stored (`NS`).
    case notStored = "NS"
    /// A CAS mismatch (`EX`).
    case exists = "EX"
    /// Not found (`NF`).
    case notFound = "NF"
    /// A miss (`EN`).
    case miss = "EN"
    /// The answer to `mn` (`MN`).
    case noop = "MN"
}

/// Which error line the server sent.
package enum MetaErrorKind: String, Sendable, Hashable {
    /// `ERROR`: an unknown command.
    case error = "ERROR"
    /// `CLIENT_ERROR`: a malformed request.
    case client = "CLIENT_ERROR"
    /// `SERVER_ERROR`: the server failed (out of memory, too large...).
    case server = "SERVER_ERROR"
}

/// The flags a meta reply returns: a letter and its token (`f0`, `c1234`, `t-1`, `k...`).
package struct MetaFlags: Sendable, Hashable {
    /// Letter → token, as sent.
    package var tokens: [UInt8: String]

    /// Flags from tokens.
    package init(_ tokens: [UInt8: String] = [:]) { self.tokens = tokens }

    /// The token of flag `letter` (`"f"`), if sent.
    package subscript(_ letter: Unicode.Scalar) -> String? { tokens[UInt8(ascii: letter)] }

    /// The client flags (`f`).
    package var clientFlags: UInt32? { self["f"].flatMap { UInt32($0) } }
    /// The CAS token (`c`).
    package var cas: UInt64? { self["c"].flatMap { UInt64($0) } }
}

/// How much a reply may be before the decoder calls it malformed. Every length
/// is checked before anything is buffered for it.
public struct MetaDecoderLimits: Sendable, Hashable {
    /// The longest reply line, without its CRLF. Default 8 KiB (a key is at most 250 bytes).
    public var maxLineLength = 8 * 1024
    /// The largest value. Default 128 MiB (memcached's item size limit is 1 MiB unless raised with `-I`).
    public var maxValueLength = 128 * 1024 * 1024

    /// The defaults.
    public init() {}
}

/// A reply that breaks the protocol or the limits: the connection that read it cannot be trusted any more.
package struct MetaDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong, with the offending bytes shown escaped and cut short.
    package var message: String

    /// Creates an error.
    package init(_ message: String) { self.message = message }

    /// `memcached protocol: <message>`.
    package var description: String { "memcached protocol: \(message)" }
}

/// Parses replies out of a buffer, incrementally: a reply that has not fully
/// arrived leaves the buffer untouched, and no length is trusted before it is checked.
package struct MetaParser: Sendable {
    /// The limits applied.
    package let limits: MetaDecoderLimits

    /// Creates a parser.
    package init(limits: MetaDecoderLimits = .init()) { self.limits = limits }

    /// The next complete reply, consumed from `buffer`; `nil` (and `buffer` unchanged) when it has not fully arrived.
    package func parse(_ buffer: inout ByteBuffer) throws(MetaDecodingError) -> MetaResponse? {
        let view = buffer.readableBytesView
        guard let lineFeed = view.firstIndex(of: UInt8(ascii: "\n")) else {
            guard view.count <= limits.maxLineLength + 1 else {
                throw MetaDecodingError("a line longer than \(limits.maxLineLength) bytes")
            }
            return nil
        }
        let lineLength = lineFeed - view.startIndex
        guard lineLength >= 1, view[lineFeed - 1] == UInt8(ascii: "\r") else {
            throw MetaDecodingError("a line not ended by CRLF: \(shown(view[view.startIndex..<lineFeed]))")
        }
        guard lineLength - 1 <= limits.maxLineLength else { throw MetaDecodingError("a line longer than \(limits.maxLineLength) bytes") }
        let line = view[view.startIndex..<(lineFeed - 1)]
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard let head = words.first.map({ String(decoding: $0, as: UTF8.self) }) else { throw MetaDecodingError("an empty line") }
        let consumed = lineLength + 1
        let response: MetaResponse
        switch head {
        case "VA":
            guard words.count >= 2, let size = Int(String(decoding: words[1], as: UTF8.self)), size >= 0 else {
                throw MetaDecodingError("VA without a valid size: \(shown(line))")
            }
            guard size <= limits.maxValueLength else {
                throw MetaDecodingError("a value of \(size) bytes, more than \(limits.maxValueLength)")
            }
            guard buffer.readableBytes >= consumed + size + 2 else { return nil }
            let flags = try self.flags(words.dropFirst(2), line)
            buffer.moveReaderIndex(forwardBy: consumed)
            let value = buffer.readSlice(length: size)!
            guard buffer.readInteger(as: UInt16.self) == 0x0d0a else { throw MetaDecodingError("a value not followed by CRLF") }
            return .value(value, flags)
        case "HD", "NS", "EX", "NF", "EN", "MN":
            response = .status(MetaStatus(rawValue: head)!, try flags(words.dropFirst(), line))
        case "VERSION":
            guard words.count == 2 else { throw MetaDecodingError("a malformed VERSION line: \(shown(line))") }
            response = .version(String(decoding: words[1], as: UTF8.self))
        case "OK":
            response = .ok
        case "END":
            response = .end
        case "STAT":
            guard words.count >= 3 else { throw MetaDecodingError("a malformed STAT line: \(shown(line))") }
            response = .stat(
                name: String(decoding: words[1], as: UTF8.self),
                value: words.dropFirst(2).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))
        case "ERROR", "CLIENT_ERROR", "SERVER_ERROR":
            let text = line.dropFirst(head.utf8.count).drop { $0 == UInt8(ascii: " ") }
            response = .error(MetaErrorKind(rawValue: head)!, String(decoding: text, as: UTF8.self))
        default:
            throw MetaDecodingError("an unknown reply: \(shown(line))")
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        return response
    }

    private func flags(
        _ words: ArraySlice<ByteBufferView.SubSequence>, _ line: ByteBufferView.SubSequence
    ) throws(MetaDecodingError) -> MetaFlags {
        var tokens: [UInt8: String] = [:]
        for word in words {
            guard let letter = word.first, (0x41...0x5a).contains(letter) || (0x61...0x7a).contains(letter) else {
                throw MetaDecodingError("a flag that is not a letter: \(shown(line))")
            }
            tokens[letter] = String(decoding: word.dropFirst(), as: UTF8.self)
        }
        return MetaFlags(tokens)
    }

    private func shown(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes.prefix(60), as: UTF8.self).debugDescription + (bytes.count > 60 ? "…" : "")
    }
}

/// ``MetaParser`` as a SwiftNIO decoder: reads ``MetaResponse``s off a channel.
package struct MetaDecoder: ByteToMessageDecoder, Sendable {
    /// What it produces.
    package typealias InboundOut = MetaResponse
    private let parser: MetaParser

    /// Creates a decoder with `limits`.
    package init(limits: MetaDecoderLimits = .init()) { parser = MetaParser(limits: limits) }

    /// Decodes one reply when a whole one is there.
    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let response = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(response))
        return .continue
    }

    /// At the end of the stream, a partial reply is an error.
    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw MetaDecodingError("the connection ended in the middle of a reply") }
        return .needMoreData
    }
}

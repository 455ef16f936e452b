import NIOCore
import NIOEmbedded
import NIOTestUtils
import RESP
import Testing

@Suite("RESP decoding: every reply type, incremental input, limits, garbage")
struct RESPDecoderTests {
    /// Every value the wire text decodes to, fed whole.
    func decodeAll(_ wire: String, limits: RESPDecoderLimits = .init()) throws(RESPDecodingError) -> [RESPValue] {
        var buffer = ByteBuffer(string: wire)
        var values: [RESPValue] = []
        var parser = RESPParser(limits: limits)
        while let value = try parser.parse(&buffer) { values.append(value) }
        #expect(buffer.readableBytes == 0, "left over: \(String(buffer: buffer))")
        return values
    }

    /// The first value of `buffer`, by a parser of its own.
    static func parseOne(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        var parser = RESPParser()
        return try parser.parse(&buffer)
    }

    func expectError(
        _ reason: RESPDecodingError.Reason, _ wire: String, limits: RESPDecoderLimits = .init(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try decodeAll(wire, limits: limits)
            Issue.record("expected \(reason) for \(wire.debugDescription)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
        }
    }

    static let samples: [(wire: String, value: RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        (
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            .error("WRONGTYPE Operation against a key holding the wrong kind of value")
        ),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhello\r\n", .bulk("hello")),
        ("$0\r\n\r\n", .bulk("")),
        ("$-1\r\n", .bulkString(nil)),
        ("*-1\r\n", .array(nil)),
        ("*0\r\n", .array([])),
        ("*2\r\n:1\r\n*1\r\n$1\r\na\r\n", .array([.integer(1), .array([.bulk("a")])])),
        ("_\r\n", .null),
        ("#t\r\n", .boolean(true)),
        ("#f\r\n", .boolean(false)),
        (",3.25\r\n", .double(3.25)),
        (",-inf\r\n", .double(-.infinity)),
        ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
        ("=15\r\ntxt:Some string\r\n", .verbatimString(format: "txt", text: ByteBuffer(string: "Some string"))),
        ("!21\r\nSYNTAX invalid syntax\r\n", .error("SYNTAX invalid syntax")),
        (
            "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            .map([RESPPair(key: .simpleString("first"), value: .integer(1)), RESPPair(key: .simpleString("second"), value: .integer(2))])
        ),
        ("~2\r\n+a\r\n+b\r\n", .set([.simpleString("a"), .simpleString("b")])),
        (">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", .push([.bulk("message"), .bulk("ch"), .bulk("hi")])),
    ]

    @Test("each RESP2 and RESP3 type decodes to its value", arguments: samples.indices)
    func eachType(index: Int) throws {
        let (wire, value) = Self.samples[index]
        #expect(try decodeAll(wire) == [value])
    }

    @Test("NaN decodes to NaN (which never equals itself)")
    func nan() throws {
        guard case .double(let number) = try decodeAll(",nan\r\n").first else {
            Issue.record("not a double")
            return
        }
        #expect(number.isNaN)
    }

    @Test("attributes before a reply and inside an aggregate are read and dropped; the value after them stands in their place")
    func attributes() throws {
        #expect(try decodeAll("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n") == [.array([.integer(2)])])
        #expect(try decodeAll("|1\r\n+key\r\n:1\r\n+OK\r\n") == [.simpleString("OK")])
        #expect(try decodeAll("*2\r\n:1\r\n|1\r\n+k\r\n*0\r\n:2\r\n") == [.array([.integer(1), .integer(2)])])
        #expect(try decodeAll("|0\r\n*0\r\n") == [.array([])])
        var parser = RESPParser()
        var buffer = ByteBuffer(string: "|1\r\n+k\r\n+v\r\n")
        #expect(try parser.parse(&buffer) == nil)
        #expect(buffer.readableBytes == 0 && parser.isInsideValue, "an attribute alone is the start of a reply, not a whole one")
        buffer.writeString(":7\r\n")
        #expect(try parser.parse(&buffer) == .integer(7))
        #expect(!parser.isInsideValue)
    }

    @Test("bulk strings are binary-safe: NUL, CR and LF inside come back exactly")
    func binarySafe() throws {
        let bytes: [UInt8] = [0, 13, 10, 255, 36, 13, 10, 0]
        var wire = ByteBuffer(string: "$\(bytes.count)\r\n")
        wire.writeBytes(bytes)
        wire.writeString("\r\n")
        #expect(try Self.parseOne(&wire) == .bulkString(ByteBuffer(bytes: bytes)))
    }

    @Test("every sample decodes the same when split at every byte, through NIO's decoder verifier")
    func verifier() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(stringInputOutputPairs: Self.samples.map { ($0.wire, [$0.value]) }) {
            RESPDecoder()
        }
    }

    @Test("a scalar that has not fully arrived leaves the buffer as it was")
    func incompleteScalar() throws {
        let wire = Array("$5\r\nvalue\r\n".utf8)
        for cut in 0..<wire.count {
            var parser = RESPParser()
            var partial = ByteBuffer(bytes: wire.prefix(cut))
            #expect(try parser.parse(&partial) == nil)
            #expect(partial.readableBytes == cut)
            #expect(!parser.isInsideValue)
        }
    }

    @Test("a reply fed a byte at a time, cut anywhere, comes out once and whole", arguments: samples.indices)
    func byteAtATime(index: Int) throws {
        let (wire, value) = Self.samples[index]
        var parser = RESPParser()
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        for byte in Array(wire.utf8) {
            buffer.writeInteger(byte)
            while let value = try parser.parse(&buffer) { values.append(value) }
        }
        #expect(values == [value])
        #expect(buffer.readableBytes == 0 && !parser.isInsideValue)
    }

    @Test("a large nested reply arriving in small reads is parsed once: each read consumes the elements that arrived whole")
    func resumable() throws {
        let rows = 20_000
        let element = RESPValue.array([.bulk("field"), .integer(123_456), .array([.bulk("x")])])
        var wire = ByteBuffer()
        wire.writeRESPValue(.array(Array(repeating: element, count: rows)))
        var one = ByteBuffer()
        one.writeRESPValue(element)
        let elementSize = one.readableBytes
        var parser = RESPParser()
        var buffer = ByteBuffer()
        var result: RESPValue?
        var offset = 0
        while offset < wire.readableBytes {
            let chunk = min(1_000, wire.readableBytes - offset)
            buffer.writeImmutableBuffer(wire.getSlice(at: wire.readerIndex + offset, length: chunk)!)
            offset += chunk
            result = try parser.parse(&buffer)
            if result == nil {
                #expect(buffer.readableBytes < elementSize, "what is left is one unfinished element at most")
                #expect(parser.isInsideValue)
            }
        }
        guard case .array(let elements?) = result else {
            Issue.record("no array: \(String(describing: result))")
            return
        }
        #expect(elements.count == rows && elements.allSatisfy { $0 == element })
        #expect(!parser.isInsideValue)
    }

    @Test("encoding then decoding gives back every sample, and commands are arrays of bulk strings")
    func roundTrip() throws {
        for (_, value) in Self.samples {
            var buffer = ByteBuffer()
            buffer.writeRESPValue(value)
            #expect(try Self.parseOne(&buffer) == value)
        }
        var command = ByteBuffer()
        command.writeRESPCommand([ByteBuffer(string: "SET"), ByteBuffer(string: "k"), ByteBuffer(bytes: [0, 13, 10])])
        #expect(String(buffer: command) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\0\r\n\r\n")
    }

    @Test("integer arguments and lengths are written digit for digit: zero, negatives, Int.min, Int.max, long bulks")
    func decimals() throws {
        for number in [0, 7, 9, 10, -1, -10, 99, 100, 12_345, -987_654_321, Int.max, Int.min] {
            var buffer = ByteBuffer()
            buffer.writeRESPBulk(decimal: number)
            let digits = String(number)
            #expect(String(buffer: buffer) == "$\(digits.utf8.count)\r\n\(digits)\r\n")
        }
        for length in [0, 9, 10, 99, 100, 123_456] {
            var buffer = ByteBuffer()
            buffer.writeRESPBulk(String(repeating: "x", count: length))
            #expect(try Self.parseOne(&buffer) == .bulkString(ByteBuffer(string: String(repeating: "x", count: length))))
            #expect(buffer.readableBytes == 0)
        }
        var header = ByteBuffer()
        header.writeRESPArrayHeader(1_000_000)
        #expect(String(buffer: header) == "*1000000\r\n")
    }

    @Test("integers are read from the bytes: signs, zero, both ends of Int64; overflow, empty and stray bytes are malformed")
    func integers() throws {
        let cases: [(String, Int64)] = [
            (":0\r\n", 0), (":-0\r\n", 0), (":+7\r\n", 7), (":-42\r\n", -42), (":007\r\n", 7),
            (":9223372036854775807\r\n", .max), (":-9223372036854775808\r\n", .min),
        ]
        for (wire, number) in cases {
            #expect(try decodeAll(wire) == [.integer(number)], "\(wire.debugDescription)")
        }
        for wire in [
            ":\r\n", ":-\r\n", ":+\r\n", ":9223372036854775808\r\n", ":-9223372036854775809\r\n",
            ": 1\r\n", ":1 \r\n", ":--1\r\n", ":1-\r\n", ":18446744073709551616\r\n", "$\r\n", "*+\r\n",
        ] {
            expectError(.malformed, wire)
        }
    }

    @Test("lengths are never trusted: limits, negative lengths, missing terminators, bad lines")
    func limits() {
        var small = RESPDecoderLimits()
        small.maxBulkLength = 10
        small.maxAggregateCount = 4
        small.maxDepth = 3
        small.maxLineLength = 8
        expectError(.bulkTooLarge, "$11\r\n", limits: small)  // refused before the bytes arrive
        expectError(.aggregateTooLarge, "*5\r\n", limits: small)
        expectError(.aggregateTooLarge, "%3\r\n", limits: small)  // 3 pairs are 6 elements
        expectError(.tooDeep, "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits: small)
        expectError(.lineTooLong, "+123456789", limits: small)  // no CRLF in sight
        expectError(.invalidLength, "$-2\r\n")
        expectError(.invalidLength, "*-5\r\n")
        expectError(.invalidLength, "!-1\r\n")
        expectError(.malformed, "$abc\r\n")
        expectError(.malformed, ":12x\r\n")
        expectError(.malformed, ":99999999999999999999\r\n")
        expectError(.malformed, "+OK\rX")
        expectError(.malformed, "#x\r\n")
        expectError(.malformed, ",abc\r\n")
        expectError(.malformed, "(12a\r\n")
        expectError(.malformed, "_x\r\n")
        expectError(.malformed, "=3\r\ntxt\r\n")
        expectError(.missingTerminator, "$3\r\nabcXY")
        expectError(.unknownType, "?\r\n")
        expectError(.unknownType, "HTTP/1.1 400 Bad Request\r\n")
    }

    @Test("in a pipeline: a reply cut short by the end of the connection is a truncation error")
    func truncatedAtEOF() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder()))
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n$10\r\nhal"))
        #expect(try channel.readInbound(as: RESPValue.self) == .simpleString("OK"))
        #expect(try channel.readInbound(as: RESPValue.self) == nil)
        channel.pipeline.fireChannelInactive()
        #expect(throws: RESPDecodingError.self) { try channel.throwIfErrorCaught() }
        _ = try? channel.finish()
    }

    @Test("random bytes never crash or hang the parser: each input ends in values, a wait for more, or an error")
    func garbage() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("+-:$*_#,(=!%~>|\r\n0123456789-abc".utf8)
        for _ in 0..<5_000 {
            var buffer = ByteBuffer()
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                buffer.writeInteger(alphabet.randomElement(using: &generator)!)
            }
            var parser = RESPParser()
            var steps = 0
            while steps < 100, let value = try? parser.parse(&buffer) {
                _ = value
                steps += 1
            }
            #expect(steps < 100)
        }
    }
}

import Memcached
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("Memcached codec: meta replies, incremental input, limits, garbage; requests; keys")
struct MetaCodecTests {
    static let samples: [(wire: String, response: MetaResponse)] = [
        ("VA 5 f7 c42\r\nhello\r\n", .value(ByteBuffer(string: "hello"), MetaFlags([0x66: "7", 0x63: "42"]))),
        ("VA 0\r\n\r\n", .value(ByteBuffer(), MetaFlags())),
        ("VA 4 f0\r\na\r\nb\r\n", .value(ByteBuffer(string: "a\r\nb"), MetaFlags([0x66: "0"]))),
        ("HD\r\n", .status(.stored, MetaFlags())),
        ("HD c99 t-1\r\n", .status(.stored, MetaFlags([0x63: "99", 0x74: "-1"]))),
        ("NS\r\n", .status(.notStored, MetaFlags())),
        ("EX\r\n", .status(.exists, MetaFlags())),
        ("NF\r\n", .status(.notFound, MetaFlags())),
        ("EN\r\n", .status(.miss, MetaFlags())),
        ("MN\r\n", .status(.noop, MetaFlags())),
        ("VERSION 1.6.18\r\n", .version("1.6.18")),
        ("OK\r\n", .ok),
        ("STAT curr_items 12\r\n", .stat(name: "curr_items", value: "12")),
        ("END\r\n", .end),
        ("ERROR\r\n", .error(.error, "")),
        ("CLIENT_ERROR bad data chunk\r\n", .error(.client, "bad data chunk")),
        ("SERVER_ERROR out of memory storing object\r\n", .error(.server, "out of memory storing object")),
    ]

    func parseAll(_ wire: [UInt8], limits: MetaDecoderLimits = .init()) throws(MetaDecodingError) -> [MetaResponse] {
        var buffer = ByteBuffer(bytes: wire)
        var responses: [MetaResponse] = []
        let parser = MetaParser(limits: limits)
        while let response = try parser.parse(&buffer) { responses.append(response) }
        #expect(buffer.readableBytes == 0)
        return responses
    }

    @Test("each reply decodes to its value, whole and back to back")
    func samplesDecode() throws {
        for (wire, response) in Self.samples { #expect(try parseAll(Array(wire.utf8)) == [response], "\(wire.debugDescription)") }
        #expect(try parseAll(Array(Self.samples.map(\.wire).joined().utf8)) == Self.samples.map(\.response))
    }

    @Test("every sample decodes the same when split at every byte, through NIO's decoder verifier")
    func verifier() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(stringInputOutputPairs: Self.samples.map { ($0.wire, [$0.response]) }) {
            MetaDecoder()
        }
    }

    @Test("a reply that has not fully arrived leaves the buffer as it was")
    func incremental() throws {
        let wire = Array("VA 10 f1 c2\r\n0123456789\r\n".utf8)
        for cut in 0..<wire.count {
            var partial = ByteBuffer(bytes: wire.prefix(cut))
            #expect(try MetaParser().parse(&partial) == nil)
            #expect(partial.readableBytes == cut)
        }
    }

    @Test("values are binary-safe: every byte value comes back exactly")
    func binaryValues() throws {
        let bytes = (0...255).map { UInt8($0) } + Array("\r\nEND\r\n".utf8)
        let wire = Array("VA \(bytes.count)\r\n".utf8) + bytes + Array("\r\n".utf8)
        #expect(try parseAll(wire) == [.value(ByteBuffer(bytes: bytes), MetaFlags())])
    }

    @Test("lengths are never trusted: a value or a line over the limit, a bad size, a missing terminator, an unknown reply")
    func malformed() {
        var small = MetaDecoderLimits()
        small.maxValueLength = 10
        small.maxLineLength = 32
        let cases: [(String, MetaDecoderLimits)] = [
            ("VA 11\r\n", small),  // refused before the 11 bytes arrive
            ("VA -1\r\n\r\n", .init()),
            ("VA x\r\n", .init()),
            ("VA\r\n", .init()),
            ("VA 2\r\nabXY", .init()),
            ("HD \(String(repeating: "c", count: 40))\r\n", small),
            (String(repeating: "H", count: 40), small),  // no line end within the limit
            ("HD\n", .init()),
            ("HD 1x\r\n", .init()),
            ("WHAT\r\n", .init()),
            ("\r\n", .init()),
            ("VERSION\r\n", .init()),
            ("STAT x\r\n", .init()),
        ]
        for (wire, limits) in cases {
            #expect(throws: MetaDecodingError.self, "\(wire.debugDescription)") { _ = try parseAll(Array(wire.utf8), limits: limits) }
        }
    }

    @Test("a reply cut short by the end of the connection is an error")
    func truncated() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(MetaDecoder()))
        try channel.writeInbound(ByteBuffer(string: "HD\r\nVA 5\r\nab"))
        #expect(try channel.readInbound(as: MetaResponse.self) == .status(.stored, MetaFlags()))
        #expect(throws: (any Error).self) { _ = try channel.finish() }
    }

    @Test("random bytes never crash or hang the parser: each input ends in replies, a wait for more, or an error")
    func garbage() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("VAHDNSEXFMO ENDSTATRC_\r\n0123456789-fcktv".utf8)
        for _ in 0..<5_000 {
            var buffer = ByteBuffer()
            for _ in 0..<Int.random(in: 1...48, using: &generator) { buffer.writeInteger(alphabet.randomElement(using: &generator)!) }
            var steps = 0
            while steps < 100, (try? MetaParser().parse(&buffer)) != nil { steps += 1 }
            #expect(steps < 100)
        }
    }

    @Test("requests: the meta commands on the wire, values written byte for byte, base64 keys flagged")
    func requests() throws {
        let key = try MemcachedKey.wire(Array("user:1".utf8))
        #expect(String(buffer: MetaCommand.get(key).encoded) == "mg user:1 v f c\r\n")
        #expect(String(buffer: MetaCommand.get(key, touch: 60).encoded) == "mg user:1 v f c T60\r\n")
        #expect(String(buffer: MetaCommand.touch(key, ttl: 5).encoded) == "mg user:1 T5\r\n")
        let value = ByteBuffer(bytes: [0x00, 0x0d, 0x0a, 0xff])
        #expect(
            Array(buffer: MetaCommand.store(key, value: value, flags: 3, ttl: 0, mode: .add).encoded)
                == Array("ms user:1 4 F3 T0 ME\r\n".utf8) + [0x00, 0x0d, 0x0a, 0xff] + Array("\r\n".utf8))
        #expect(
            String(buffer: MetaCommand.store(key, value: ByteBuffer(string: "v"), flags: 0, ttl: 10, mode: .set, cas: 77).encoded)
                == "ms user:1 1 F0 T10 MS C77\r\nv\r\n")
        #expect(String(buffer: MetaCommand.delete(key, cas: 5).encoded) == "md user:1 C5\r\n")
        #expect(String(buffer: MetaCommand.arithmetic(key, delta: 2, increment: false).encoded) == "ma user:1 v D2 M-\r\n")
        #expect(
            String(buffer: MetaCommand.arithmetic(key, delta: 1, increment: true, initial: (10, 60)).encoded)
                == "ma user:1 v D1 M+ N60 J10\r\n")
        let binary = try MemcachedKey.wire([0x00, 0x20, 0xff], binary: true)
        #expect(binary.base64 && binary.bytes == Array("ACD/".utf8))
        #expect(String(buffer: MetaCommand.delete(binary).encoded) == "md ACD/ b\r\n")
        #expect(String(buffer: MetaCommand.flushAll().encoded) == "flush_all\r\n")
        #expect(MetaCommand.stats.reply == .stats)
    }

    @Test("keys: 1 to 250 bytes without spaces or control characters; binary keys as base64; errors never show the key")
    func keys() throws {
        #expect(try MemcachedKey.wire(Array(String(repeating: "k", count: 250).utf8)).bytes.count == 250)
        for bad in ["", String(repeating: "k", count: 251), "with space", "tab\there", "new\nline", "del\u{7f}"] {
            do {
                _ = try MemcachedKey.wire(Array(bad.utf8))
                Issue.record("\(bad.debugDescription) must be refused")
            } catch {
                #expect(error.code == .malformedKey)
                #expect(!error.isConnectionError)
                #expect(bad.isEmpty || !"\(error)".contains(bad))
            }
        }
        #expect(try MemcachedKey.wire(Array("with space".utf8), binary: true).base64)
        #expect(throws: MemcachedError.self) { try MemcachedKey.wire([UInt8](repeating: 0, count: 187), binary: true) }
        #expect(try MemcachedKey.wire([UInt8](repeating: 0, count: 186), binary: true).bytes.count == 248)
    }
}

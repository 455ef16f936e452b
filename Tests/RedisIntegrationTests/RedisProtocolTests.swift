import NIOCore
import RESP
import Redis
import TestServers
import TestSupport
import Testing

@Suite("A server that breaks the protocol: a typed error, never a crash or a hang")
struct RedisProtocolTests {
    /// Sends one GET to a fake server answering `reply`, and returns the error it ended with.
    /// Far beyond what any case here needs, so that "at once" can be told from "after the read timeout" on a loaded machine.
    private static let readTimeout = TestTiming.bound(.seconds(8))
    private static let atOnce = TestTiming.bound(.seconds(4))

    private func outcome(of reply: String, closeAfterReply: Bool = false) async throws -> RedisError? {
        try await outcome(of: Array(reply.utf8), closeAfterReply: closeAfterReply)
    }

    private func outcome(
        of reply: [UInt8], closeAfterReply: Bool = false, readTimeout: Duration = readTimeout
    ) async throws -> RedisError? {
        let server = try await CannedReplyServer.start(reply: reply, closeAfterReply: closeAfterReply)
        defer { Task { await server.stop() } }
        var configuration = RedisConfiguration(port: server.port)
        configuration.readTimeout = readTimeout
        var limits = RESPDecoderLimits()
        limits.maxBulkLength = 1024 * 1024
        configuration.limits = limits
        let connection = try await RedisConnection.connect(configuration)
        defer { Task { await connection.close() } }
        do {
            _ = try await connection.get("key")
            return nil
        } catch {
            #expect(connection.isBroken == error.isConnectionError)
            return error
        }
    }

    @Test("an unknown type byte is a protocolViolation and breaks the connection")
    func unknownType() async throws {
        let error = try await outcome(of: "?what\r\n")
        #expect(error?.code == .protocolViolation)
        #expect(error?.isConnectionError == true)
    }

    @Test("a bulk length beyond the limit fails at once, before any of it is awaited")
    func hugeBulk() async throws {
        let started = ContinuousClock.now
        let error = try await outcome(of: "$999999999999\r\n")
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("bulkTooLarge") == true)
        #expect(ContinuousClock.now - started < Self.atOnce)  // not the read timeout
    }

    @Test("nesting deeper than the limit is rejected")
    func tooDeep() async throws {
        let error = try await outcome(of: String(repeating: "*1\r\n", count: 100) + ":1\r\n")
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("tooDeep") == true)
    }

    @Test("a negative length, a non-number and a bulk without its CRLF are malformed")
    func malformedLengths() async throws {
        for reply in ["$-5\r\n", ":12x\r\n", "$3\r\nabcXY", "*two\r\n"] {
            let error = try await outcome(of: reply)
            #expect(error?.code == .protocolViolation, "\(reply.debugDescription)")
        }
    }

    @Test("a reply cut short by the server closing: a typed error at once, not a hang")
    func truncated() async throws {
        for reply in ["$10\r\nabc", "*3\r\n:1\r\n", "+OK"] {
            let started = ContinuousClock.now
            let error = try await outcome(of: reply, closeAfterReply: true)
            #expect(error?.code == .protocolViolation, "\(reply.debugDescription)")
            #expect(error?.message.contains("middle of a reply") == true)
            #expect(ContinuousClock.now - started < Self.atOnce)
        }
    }

    @Test("a server that closes without a word, and one that never answers")
    func silentServers() async throws {
        #expect(try await outcome(of: "", closeAfterReply: true)?.code == .connectionClosed)
        #expect(try await outcome(of: [], readTimeout: .milliseconds(300))?.code == .readTimeout)
    }

    @Test("a reply nobody asked for (two replies to one command) is a protocolViolation")
    func unsolicitedReply() async throws {
        let server = try await CannedReplyServer.start(reply: Array("$1\r\na\r\n+EXTRA\r\n".utf8), closeAfterReply: false)
        defer { Task { await server.stop() } }
        let connection = try await RedisConnection.connect(RedisConfiguration(port: server.port))
        defer { Task { await connection.close() } }
        #expect(try await connection.getString("k") == "a")
        try await waitUntilBroken(connection)
        await #expect { try await connection.ping() } throws: { ($0 as? RedisError)?.code == .protocolViolation }
    }

    @Test("random garbage: a typed error, at the latest when the read timeout fires")
    func randomGarbage() async throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<30 {
            let bytes = (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let started = ContinuousClock.now
            let error = try await outcome(of: bytes, closeAfterReply: Bool.random(using: &generator), readTimeout: .milliseconds(300))
            // Garbage that happens to be a whole valid reply is answered as one (an error reply, an unexpected type).
            if let error { #expect(error.isConnectionError || error.code == .server || error.code == .unexpectedReply, "\(bytes)") }
            #expect(ContinuousClock.now - started < Self.atOnce)
        }
    }

    private func waitUntilBroken(_ connection: RedisConnection) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !connection.isBroken, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }
}

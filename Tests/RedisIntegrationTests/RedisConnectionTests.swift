import NIOCore
import RESP
import Redis
import TestServers
import Testing

/// A connection to the shared test server.
func connectToShared(_ configure: (inout RedisConfiguration) -> Void = { _ in }) async throws -> RedisConnection {
    let server = try await RedisServer.shared()
    var configuration = RedisConfiguration(port: server.port)
    configure(&configuration)
    return try await RedisConnection.connect(configuration)
}

/// A key no other test uses.
func uniqueKey(_ name: String = #function) -> String {
    "test:\(name.prefix { $0 != "(" }):\(UInt64.random(in: 0...UInt64.max))"
}

@Suite("RedisConnection against a real redis-server")
struct RedisConnectionTests {
    @Test("every RESP2 reply type: status, error, integer, bulk, null bulk, array, null array, nested array")
    func replyTypes() async throws {
        let connection = try await connectToShared()
        defer { Task { await connection.close() } }
        let key = uniqueKey()
        #expect(try await connection.send("SET", key, "v") == .simpleString("OK"))
        #expect(try await connection.send("INCR", key + ":n") == .integer(1))
        #expect(try await connection.send("GET", key) == .bulk("v"))
        #expect(try await connection.send("GET", key + ":missing") == .bulkString(nil))
        try await connection.send("RPUSH", key + ":list", "a", "b")
        #expect(try await connection.send("LRANGE", key + ":list", 0, -1) == .array([.bulk("a"), .bulk("b")]))
        #expect(try await connection.send("BLPOP", key + ":empty", "0.01") == .array(nil))
        let nested = try await connection.send("EVAL", "return {1, {'x', 2}, 'y'}", 0)
        #expect(nested == .array([.integer(1), .array([.bulk("x"), .integer(2)]), .bulk("y")]))
        await #expect(throws: RedisError.self) { try await connection.send("NOSUCHCOMMAND") }
    }

    @Test("RESP3 after HELLO 3: maps, sets, doubles, booleans, big numbers, verbatim strings, nulls")
    func resp3Types() async throws {
        let connection = try await connectToShared { $0.protocolVersion = .resp3 }
        defer { Task { await connection.close() } }
        let key = uniqueKey()
        try await connection.send("HSET", key, "f", "1")
        #expect(try await connection.send("HGETALL", key) == .map([RESPPair(key: .bulk("f"), value: .bulk("1"))]))
        try await connection.send("SADD", key + ":s", "m")
        #expect(try await connection.send("SMEMBERS", key + ":s") == .set([.bulk("m")]))
        try await connection.send("ZADD", key + ":z", "1.5", "m")
        #expect(try await connection.send("ZSCORE", key + ":z", "m") == .double(1.5))
        #expect(try await connection.send("GET", key + ":missing") == .null)
        #expect(try await connection.send("EVAL", "return redis.setresp(3) or {double=2.5}", 0) == .double(2.5))
        #expect(try await connection.send("EVAL", "redis.setresp(3); return true", 0) == .boolean(true))
        #expect(
            try await connection.send("EVAL", "redis.setresp(3); return {big_number='123456789012345678901234567890'}", 0)
                == .bigNumber("123456789012345678901234567890"))
        if case .verbatimString(let format, let text) = try await connection.send("LOLWUT", "VERSION", "5") {
            #expect(format == "txt")
            #expect(text.readableBytes > 0)
        } else {
            Issue.record("LOLWUT should answer a verbatim string under RESP3")
        }
    }

    @Test("values with NUL, CR and LF inside, and every byte value, round-trip exactly")
    func binarySafety() async throws {
        let connection = try await connectToShared()
        defer { Task { await connection.close() } }
        let key = uniqueKey() + "\r\n\0key"
        let value = ByteBuffer(bytes: Array(0...255) + Array("\r\n$-1\r\n*3\r\n\0".utf8))
        try await connection.set(key, to: value)
        #expect(try await connection.get(key) == value)
        #expect(try await connection.send("STRLEN", key) == .integer(Int64(value.readableBytes)))
    }

    @Test("a 10 MB value is written and read back whole")
    func largeValue() async throws {
        let connection = try await connectToShared()
        defer { Task { await connection.close() } }
        let key = uniqueKey()
        var bytes = [UInt8](repeating: 0, count: 10 * 1024 * 1024)
        for index in stride(from: 0, to: bytes.count, by: 4096) { bytes[index] = UInt8(truncatingIfNeeded: index / 4096) }
        let value = ByteBuffer(bytes: bytes)
        try await connection.set(key, to: value)
        let back = try await connection.get(key)
        #expect(back == value)
        try await connection.delete(key)
    }

    @Test("10,000 commands from concurrent tasks on one connection each get their own reply")
    func concurrentPipelining() async throws {
        let connection = try await connectToShared()
        defer { Task { await connection.close() } }
        let key = uniqueKey()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<100 {
                group.addTask {
                    for index in 0..<100 {
                        let n = task * 100 + index
                        let reply = try await connection.send("ECHO", "value-\(n)")
                        #expect(reply == .bulk("value-\(n)"))
                        try await connection.send("INCR", key)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await connection.getString(key) == "10000")
    }

    @Test("an explicit pipeline of 10,000 commands: one write, replies in order, an error reply in the middle stays its own")
    func explicitPipeline() async throws {
        let connection = try await connectToShared()
        defer { Task { await connection.close() } }
        let key = uniqueKey()
        var commands = (0..<10_000).map { RedisCommand("RPUSH", key, $0) }
        commands[5000] = RedisCommand("INCR", key)  // WRONGTYPE: the key holds a list
        let results = await connection.pipeline(commands)
        #expect(results.count == 10_000)
        #expect(try results[9999].get() == .integer(9999))
        if case .failure(let error) = results[5000] {
            #expect(error.prefix == "WRONGTYPE")
        } else {
            Issue.record("INCR on a list should fail")
        }
        #expect(try await connection.send("LLEN", key) == .integer(9999))
    }

    @Test("a server error is typed, keeps its prefix, and the connection stays usable")
    func serverErrors() async throws {
        let connection = try await connectToShared()
        defer { Task { await connection.close() } }
        let key = uniqueKey()
        try await connection.send("LPUSH", key, "x")
        do {
            _ = try await connection.get(key)
            Issue.record("GET on a list should fail")
        } catch {
            #expect(error.code == .server)
            #expect(error.prefix == "WRONGTYPE")
            #expect(error.command == "GET")
            #expect(!error.isConnectionError)
        }
        do {
            try await connection.send("NOSUCHCOMMAND", "x")
            Issue.record("an unknown command should fail")
        } catch {
            #expect(error.prefix == "ERR")
        }
        #expect(!connection.isBroken)
        try await connection.ping()
    }
}

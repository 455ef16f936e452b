import Memcached
import NIOCore
import TestServers
import TestSupport
import Testing

/// A server of this test process's own, with `body` run against a fresh connection to it.
func withServer<T>(
    _ name: String, maxItemSize: Int? = nil, configure: (inout MemcachedServerConfiguration) -> Void = { _ in },
    _ body: (MemcachedServer, MemcachedConnection) async throws -> T
) async throws -> T {
    let server = try await MemcachedServer.start(name: name, maxItemSize: maxItemSize)
    defer {
        server.resume()
        server.destroy()
    }
    var configuration = MemcachedServerConfiguration(port: server.port)
    // Generous unless a test wants a short one: under CI load a 1 MiB reply was seen to take over 500 ms.
    configuration.readTimeout = .seconds(3)
    configure(&configuration)
    let connection = try await MemcachedConnection.connect(configuration)
    let result = try await body(server, connection)
    await connection.close()
    return result
}

/// The error `body` threw, which must be a ``MemcachedError``.
func memcachedError(_ body: () async throws -> Void) async -> MemcachedError? {
    do {
        try await body()
        return nil
    } catch let error as MemcachedError {
        return error
    } catch {
        Issue.record("not a MemcachedError: \(error)")
        return nil
    }
}

@Suite("MemcachedConnection against a real memcached")
struct MemcachedConnectionTests {
    @Test(
        "every operation and its typed outcome: set, get, add, replace, append, prepend, CAS, delete, incr/decr, touch, flush, version, stats"
    )
    func operations() async throws {
        try await withServer("operations") { _, connection in
            #expect(try await connection.get("absent") == nil)
            try await connection.set("k", to: ByteBuffer(string: "v1"), flags: 42)
            let item = try #require(try await connection.get("k"))
            #expect(item.string == "v1" && item.flags == 42 && item.cas != 0)

            #expect(await memcachedError { try await connection.add("k", ByteBuffer(string: "x")) }?.code == .notStored)
            try await connection.add("new", ByteBuffer(string: "n"))
            #expect(await memcachedError { try await connection.replace("missing", with: ByteBuffer(string: "x")) }?.code == .notStored)
            try await connection.replace("k", with: ByteBuffer(string: "v2"))
            try await connection.append(ByteBuffer(string: ">"), to: "k")
            try await connection.prepend(ByteBuffer(string: "<"), to: "k")
            #expect(try await connection.get("k")?.string == "<v2>")
            #expect(await memcachedError { try await connection.append(ByteBuffer(string: "x"), to: "missing") }?.code == .notStored)

            let before = try #require(try await connection.get("k"))
            try await connection.set("k", to: ByteBuffer(string: "changed"))
            let conflict = await memcachedError {
                try await connection.compareAndSwap("k", to: ByteBuffer(string: "mine"), cas: before.cas)
            }
            #expect(conflict?.code == .exists)
            #expect(conflict?.isConnectionError == false)
            let current = try #require(try await connection.get("k"))
            try await connection.compareAndSwap("k", to: ByteBuffer(string: "mine"), cas: current.cas)
            #expect(try await connection.get("k")?.string == "mine")
            #expect(
                await memcachedError { try await connection.compareAndSwap("gone", to: ByteBuffer(string: "x"), cas: 1) }?.code == .notFound
            )

            #expect(try await connection.delete("k"))
            #expect(try await connection.delete("k") == false)

            #expect(try await connection.increment("n") == nil)
            try await connection.set("n", to: ByteBuffer(string: "10"))
            #expect(try await connection.increment("n", by: 5) == 15)
            #expect(try await connection.decrement("n", by: 20) == 0, "decrement stops at 0")
            #expect(try await connection.touch("n", expiry: .seconds(100)))
            #expect(try await connection.touch("absent", expiry: .seconds(1)) == false)
            try await connection.set("short", to: ByteBuffer(string: "x"), expiry: .seconds(1))
            try await Task.sleep(for: .milliseconds(2100))
            #expect(try await connection.get("short") == nil, "expired")

            #expect(try await connection.version().hasPrefix("1.6"))
            let stats = try await connection.stats()
            #expect(stats["curr_items"] != nil && stats["pid"] != nil)
            try await connection.flushAll()
            #expect(try await connection.get("n") == nil)
            #expect(!connection.isBroken)
        }
    }

    @Test("values are binary-safe (CR, LF, NUL, every byte); a value at the size limit is stored, one byte over is refused before any I/O")
    func valuesAndLimits() async throws {
        try await withServer("limits", maxItemSize: 2 * 1024 * 1024) { _, connection in
            let bytes = ByteBuffer(bytes: (0...255).map { UInt8($0) } + Array("\r\nEND\r\nVA 3\r\n".utf8) + [0, 0, 13, 10])
            try await connection.set("binary", to: bytes)
            #expect(try await connection.get("binary")?.value == bytes)
            let atLimit = ByteBuffer(repeating: 0x61, count: connection.maxItemSize)
            try await connection.set("big", to: atLimit)
            #expect(try await connection.get("big")?.value.readableBytes == connection.maxItemSize)
            let over = await memcachedError {
                try await connection.set("bigger", to: ByteBuffer(repeating: 0x61, count: connection.maxItemSize + 1))
            }
            #expect(over?.code == .tooLarge)
            #expect(over?.isConnectionError == false)
            #expect(!connection.isBroken)
        }
    }

    @Test("keys at 250 bytes work; over 250 bytes, with spaces or control characters: typed, nothing sent, the connection stays")
    func keys() async throws {
        try await withServer("keys") { _, connection in
            let longest = String(repeating: "k", count: 250)
            try await connection.set(longest, to: ByteBuffer(string: "ok"))
            #expect(try await connection.get(longest)?.string == "ok")
            for bad in [String(repeating: "k", count: 251), "has space", "line\r\nbreak", ""] {
                let error = await memcachedError { try await connection.set(bad, to: ByteBuffer(string: "x")) }
                #expect(error?.code == .malformedKey)
            }
            #expect(!connection.isBroken)
            #expect(try await connection.get(longest)?.string == "ok")
        }
    }

    @Test("200 requests from many tasks at once on one connection, each gets its own reply")
    func pipelining() async throws {
        try await withServer("pipelining") { _, connection in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await connection.set("p\(index)", to: ByteBuffer(string: "v\(index)"))
                        #expect(try await connection.get("p\(index)")?.string == "v\(index)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("SIGSTOP: a read timeout, not a hang; SIGKILL: the connection is lost, a new one is refused; restart: back, empty")
    func serverFaults() async throws {
        // 300 ms stretched under the sanitizers: an instrumented set before the pause once took longer.
        try await withServer("faults", configure: { $0.readTimeout = TestTiming.bound(.milliseconds(300)) }) { server, connection in
            try await connection.set("k", to: ByteBuffer(string: "v"))
            await server.pause()
            let started = ContinuousClock.now
            let timeout = await memcachedError { _ = try await connection.get("k") }
            #expect(timeout?.code == .readTimeout)
            #expect(started.duration(to: .now) < TestTiming.bound(.seconds(3)))
            #expect(connection.isBroken)
            server.resume()

            let second = try await MemcachedConnection.connect(MemcachedServerConfiguration(port: server.port))
            try await server.kill()
            let lost = await memcachedError { _ = try await second.get("k") }
            #expect(lost?.isConnectionError == true)
            let refused = await memcachedError {
                _ = try await MemcachedConnection.connect(MemcachedServerConfiguration(port: server.port))
            }
            #expect(refused?.code == .connectFailed)
            try await server.restart()
            let third = try await MemcachedConnection.connect(MemcachedServerConfiguration(port: server.port))
            #expect(try await third.get("k") == nil, "a restarted server is empty")
            await third.close()
            await second.close()
        }
    }

    @Test(
        "a server that sends malformed, truncated or oversized replies: a typed protocol error, no crash, no hang",
        arguments: [
            ("WHAT\r\n", false), ("VA 5\r\nab", true), ("VA 99999999999\r\n", false), ("HD\r\nHD\r\n", false), ("VA x\r\n", false),
        ])
    func garbage(reply: String, closes: Bool) async throws {
        let server = try await CannedReplyServer.start(reply: Array(reply.utf8), closeAfterReply: closes)
        defer { Task { await server.stop() } }
        var configuration = MemcachedServerConfiguration(port: server.port)
        configuration.readTimeout = .seconds(2)
        let connection = try await MemcachedConnection.connect(configuration)
        let error = await memcachedError { _ = try await connection.get("k") }
        #expect(error?.code == .protocolViolation || error?.code == .connectionLost, "\(String(describing: error))")
        #expect(error?.code != .readTimeout)
        #expect(connection.isBroken || error?.code == .protocolViolation)
        await connection.close()
    }
}

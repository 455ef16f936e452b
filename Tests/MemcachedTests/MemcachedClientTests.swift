import Memcached
import NIOCore
import TestServers
import Testing

/// `count` servers of this test process's own, and a client over them, for `body`.
func withServers<T>(
    _ name: String, count: Int, _ body: ([MemcachedServer], MemcachedClient) async throws -> T
) async throws -> T {
    var servers: [MemcachedServer] = []
    defer {
        for server in servers {
            server.resume()
            server.destroy()
        }
    }
    for index in 0..<count { servers.append(try await MemcachedServer.start(name: "\(name)-\(index)")) }
    let client = MemcachedClient(configuration: MemcachedClientConfiguration(servers: servers.map { MemcachedServerConfiguration(port: $0.port) }))
    let result = try await body(servers, client)
    await client.close()
    return result
}

/// How many items a server holds now.
func items(on server: MemcachedServer) async throws -> Int {
    let connection = try await MemcachedConnection.connect(MemcachedServerConfiguration(port: server.port))
    defer { Task { await connection.close() } }
    return Int(try await connection.stats()["curr_items"] ?? "") ?? -1
}

@Suite("MemcachedClient over several real memcached servers")
struct MemcachedClientTests {
    @Test("keys land on the server ketama names, spread over three servers; every operation goes to the key's server")
    func placement() async throws {
        try await withServers("placement", count: 3) { servers, client in
            let keys = (0..<600).map { "key:\($0)" }
            for key in keys { try await client.set(key, to: ByteBuffer(string: key)) }
            var expected = [0, 0, 0]
            for key in keys { expected[client.serverIndex(for: key)!] += 1 }
            for (index, server) in servers.enumerated() {
                #expect(try await items(on: server) == expected[index])
                #expect(expected[index] > 100, "server \(index) holds \(expected[index]) of 600 keys")
            }
            for key in keys.prefix(50) { #expect(try await client.get(key)?.string == key) }
            #expect(try await client.increment("counter") == nil)
            try await client.set("counter", to: ByteBuffer(string: "1"))
            #expect(try await client.increment("counter", by: 2) == 3)
            #expect(try await client.delete("counter"))
            let versions = await client.versions()
            #expect(versions.count == 3 && versions.values.allSatisfy { (try? $0.get())?.hasPrefix("1.6") == true })
        }
    }

    @Test("get many across servers, in one round trip per server; with one server down the rest arrive and its keys fail by server")
    func getMany() async throws {
        try await withServers("many", count: 2) { servers, client in
            let keys = (0..<100).map { "m:\($0)" }
            for key in keys where key != "m:7" { try await client.set(key, to: ByteBuffer(string: "v-\(key)")) }
            let all = await client.getMany(keys + ["bad key"])
            #expect(all.items.count == 99)
            #expect(all.items["m:7"] == nil)
            #expect(all.items["m:42"]?.string == "v-m:42")
            #expect(all.failures.isEmpty)
            #expect(all.refused["bad key"]?.code == .malformedKey)

            try await servers[1].kill()
            let partial = await client.getMany(keys)
            let onLiving = keys.filter { client.serverIndex(for: $0) == 0 && $0 != "m:7" }
            #expect(partial.items.count == onLiving.count)
            #expect(Set(partial.items.keys) == Set(onLiving))
            #expect(partial.failures.keys.sorted() == ["127.0.0.1:\(servers[1].port)"])
            #expect(Set(partial.failures.keys) == ["127.0.0.1:\(servers[1].port)"])
        }
    }

    @Test("adding a third server to two moves about a third of the keys, all of them to the new server")
    func addingAServer() {
        let two = MemcachedClient(configuration: MemcachedClientConfiguration(servers: [
            MemcachedServerConfiguration(host: "10.0.0.1"), MemcachedServerConfiguration(host: "10.0.0.2"),
        ]))
        let three = MemcachedClient(configuration: MemcachedClientConfiguration(servers: [
            MemcachedServerConfiguration(host: "10.0.0.1"), MemcachedServerConfiguration(host: "10.0.0.2"), MemcachedServerConfiguration(host: "10.0.0.3"),
        ]))
        let keys = (0..<20_000).map { "k\($0)" }
        let moved = keys.filter { two.serverIndex(for: $0) != three.serverIndex(for: $0) }
        #expect(moved.allSatisfy { three.serverIndex(for: $0) == 2 })
        let share = Double(moved.count) / Double(keys.count)
        #expect(share > 0.22 && share < 0.45, "\(share) of the keys moved")
    }
}

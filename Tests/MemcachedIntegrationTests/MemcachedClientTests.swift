import Memcached
import NIOClientSupport
import NIOCore
import TestServers
import Testing

/// `count` servers of this test process's own, and a client over them, for `body`.
func withServers<T>(
    _ name: String, count: Int, sharedConnections: Int? = 1, _ body: ([MemcachedServer], MemcachedClient) async throws -> T
) async throws -> T {
    var servers: [MemcachedServer] = []
    defer {
        for server in servers {
            server.resume()
            server.destroy()
        }
    }
    for index in 0..<count { servers.append(try await MemcachedServer.start(name: "\(name)-\(index)")) }
    var configuration = MemcachedClientConfiguration(
        servers: servers.map { server in
            var configuration = MemcachedServerConfiguration(port: server.port)
            configuration.readTimeout = .seconds(3)  // generous: these tests are not about timeouts
            configuration.connectTimeout = .seconds(3)
            return configuration
        })
    configuration.sharedConnectionsPerServer = sharedConnections
    let client = MemcachedClient(configuration: configuration)
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

    @Test(
        "tasks that prefer the client's executor run on its event loop, for every server, and see their own replies; so do pipelined batches"
    )
    func taskExecutor() async throws {
        try await withServers("executor", count: 2) { _, client in
            let loop = client.taskExecutor.eventLoop
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<40 {
                    group.addTask(executorPreference: client.taskExecutor) { () async throws -> Void in
                        for round in 0..<25 {
                            #expect(loop.inEventLoop)
                            let key = "x:\(task):\(round)"
                            try await client.set(key, to: ByteBuffer(string: key))
                            #expect(try await client.get(key)?.string == key)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let keys = (0..<40).map { "x:\($0):24" }
            let all = try await withTaskExecutorPreference(client.taskExecutor) { () async throws -> MemcachedMultiGet in
                #expect(loop.inEventLoop)
                return await client.getMany(keys)
            }
            #expect(all.items.count == 40 && all.failures.isEmpty)
            #expect(Set(keys.map { client.serverIndex(for: $0) }) == [0, 1], "both servers were asked")
        }
    }

    @Test(
        "pooled or shared connections: concurrent tasks get their own replies; a killed server fails the calls in flight, typed, none hangs; restarted, it serves again",
        arguments: [nil, 1, 2] as [Int?])
    func connectionModes(shared: Int?) async throws {
        try await withServers("modes-\(shared.map(String.init) ?? "pool")", count: 1, sharedConnections: shared) { servers, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<32 {
                    group.addTask {
                        for round in 0..<30 {
                            let key = "mode:\(task):\(round)"
                            try await client.set(key, to: ByteBuffer(string: key))
                            #expect(try await client.get(key)?.string == key)
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Calls in flight when the server dies: each ends, with a typed connection-class error or a success.
            let outcomes = try await withThrowingTaskGroup(of: MemcachedError?.self) { group in
                for task in 0..<32 {
                    group.addTask {
                        for round in 0... {
                            do throws(MemcachedError) {
                                _ = try await client.get("mode:\(task):\(round % 30)")
                            } catch {
                                return error
                            }
                        }
                        return nil
                    }
                }
                try await Task.sleep(for: .milliseconds(50))
                try await servers[0].kill()
                var errors: [MemcachedError?] = []
                for try await error in group { errors.append(error) }
                return errors
            }
            #expect(outcomes.count == 32)
            #expect(outcomes.allSatisfy { $0?.isConnectionError == true }, "\(outcomes.compactMap { $0?.code })")
            try await servers[0].restart()
            try await client.set("after", to: ByteBuffer(string: "restart"))
            #expect(try await client.get("after")?.string == "restart")
        }
    }

    @Test("adding a third server to two moves about a third of the keys, all of them to the new server")
    func addingAServer() {
        let two = MemcachedClient(
            configuration: MemcachedClientConfiguration(servers: [
                MemcachedServerConfiguration(host: "10.0.0.1"), MemcachedServerConfiguration(host: "10.0.0.2"),
            ]))
        let three = MemcachedClient(
            configuration: MemcachedClientConfiguration(servers: [
                MemcachedServerConfiguration(host: "10.0.0.1"), MemcachedServerConfiguration(host: "10.0.0.2"),
                MemcachedServerConfiguration(host: "10.0.0.3"),
            ]))
        let keys = (0..<20_000).map { "k\($0)" }
        let moved = keys.filter { two.serverIndex(for: $0) != three.serverIndex(for: $0) }
        #expect(moved.allSatisfy { three.serverIndex(for: $0) == 2 })
        let share = Double(moved.count) / Double(keys.count)
        #expect(share > 0.22 && share < 0.45, "\(share) of the keys moved")
    }
}

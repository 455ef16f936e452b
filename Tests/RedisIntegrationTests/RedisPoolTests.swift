import ConnectionKit
import NIOClientSupport
import NIOCore
import RESP
import Redis
import TestServers
import TestSupport
import Testing

/// A pool on a private server, with `configure` applied to its options.
private func withPool<T: Sendable>(
    size: Int, server: RedisServer, _ configure: (inout RedisPoolOptions) -> Void = { _ in },
    _ body: @Sendable (RedisPool) async throws -> T
) async throws -> T {
    var options = RedisPoolOptions(name: "test-pool")
    configure(&options)
    let pool = RedisPool(configuration: RedisConfiguration(port: server.port), size: size, options: options)
    return try await whileRunning(pool) { try await body(pool) }
}

/// How many clients other than redis-cli itself the server has.
private func clientCount(_ server: RedisServer) async throws -> Int {
    let info = try await server.cli("INFO", "clients")
    let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("connected_clients:") } ?? ""
    return (Int(line.split(separator: ":").last ?? "") ?? 0) - 1
}

/// Polls until the server has `count` clients besides redis-cli (closes reach it a moment later).
private func expectClients(_ count: Int, on server: RedisServer) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while try await clientCount(server) != count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    let seen = try await clientCount(server)
    let list = try await server.cli("CLIENT", "LIST")
    #expect(seen == count, "the server lists \(seen) client(s) besides redis-cli: \(list)")
}

@Suite("RedisPool: every option observable in behaviour")
struct RedisPoolTests {
    @Test("size and Avail: returned connections beyond the size are closed; Cmd and withConnection work")
    func sizeAndAvail() async throws {
        try await withPrivateServer("pool-size") { server in
            try await withPool(size: 2, server: server) { pool in
                var leases: [RedisPool.Lease] = []
                for _ in 0..<4 { leases.append(try await pool.get()) }
                #expect(pool.available == 0)
                for lease in leases { await pool.put(lease) }
                #expect(pool.available == 2)
                #expect(pool.statistics.closed["overflow"] == 2)
                try await pool.set("k", to: "v")
                #expect(try await pool.getString("k") == "v")
                let replies = try await pool.withConnection { connection in
                    try await connection.send("MULTI")
                    try await connection.send("INCR", "n")
                    try await connection.send("INCR", "n")
                    return try await connection.send("EXEC")
                }
                #expect(replies == .array([.integer(1), .integer(2)]))
            }
        }
    }

    @Test("CreateLimit bounds connection creation under a burst; GetTimeout ends a wait with poolTimeout")
    func createLimitAndGetTimeout() async throws {
        try await withPrivateServer("pool-create") { server in
            try await withPool(size: 10, server: server, { $0.createLimit = CreateLimit(headroom: 2, interval: .milliseconds(600)) }) {
                pool in
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: RedisPool.Lease.self) { group in
                    for _ in 0..<5 { group.addTask { try await pool.get() } }
                    try await waitUntil("the headroom's two dials", timeout: .seconds(5)) { pool.statistics.opened == 2 }
                    try await Task.sleep(for: .milliseconds(150))
                    // The rest wait for tokens, one per 600 ms: however late this check runs (a loaded
                    // machine, TSan), no more than the headroom plus the tokens since the start.
                    let tokens = Int((ContinuousClock.now - started) / .milliseconds(600))
                    #expect(pool.statistics.opened <= 2 + tokens + 1)
                    var leases: [RedisPool.Lease] = []
                    for try await lease in group { leases.append(lease) }
                    #expect(ContinuousClock.now - started >= .milliseconds(1500))  // 3 more tokens
                    for lease in leases { await pool.put(lease) }
                }
                #expect(pool.statistics.opened == 5)
            }
            #expect(RedisPoolOptions().getTimeout == .seconds(30), "a borrow waits 30 s at most by default")
            try await withPool(
                size: 1, server: server,
                {
                    $0.createLimit = CreateLimit(headroom: 1, interval: .seconds(60))
                    $0.getTimeout = .milliseconds(200)
                }
            ) { pool in
                let held = try await pool.get()
                let started = ContinuousClock.now
                await #expect { try await pool.get() } throws: { ($0 as? RedisError)?.code == .poolTimeout }
                let waited = ContinuousClock.now - started
                #expect(waited >= .milliseconds(150) && waited < .seconds(3))
                await pool.put(held)
            }
        }
    }

    @Test("OnFullBuffer keeps surplus connections, then drains one per interval")
    func overflowBuffer() async throws {
        try await withPrivateServer("pool-overflow") { server in
            try await withPool(size: 1, server: server, { $0.onFullBuffer = OverflowBuffer(size: 2, drainInterval: .milliseconds(300)) }) {
                pool in
                var leases: [RedisPool.Lease] = []
                for _ in 0..<3 { leases.append(try await pool.get()) }
                for lease in leases { await pool.put(lease) }
                #expect(pool.available == 3)
                try await waitUntil("one drained", timeout: .seconds(3)) { pool.available == 2 }
                try await waitUntil("two drained", timeout: .seconds(3)) { pool.available == 1 }
                try await Task.sleep(for: .milliseconds(500))
                #expect(pool.available == 1)  // the size itself is never drained
                #expect(pool.statistics.closed["overflow"] == 2)
                try await expectClients(1, on: server)
            }
        }
    }

    @Test("PingInterval finds connections the server closed while they sat idle")
    func pingInterval() async throws {
        try await withPrivateServer("pool-ping") { server in
            try await withPool(size: 3, server: server, { $0.pingInterval = .every(.milliseconds(50)) }) { pool in
                var leases: [RedisPool.Lease] = []
                for _ in 0..<3 { leases.append(try await pool.get()) }
                for lease in leases { await pool.put(lease) }
                try await server.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                try await waitUntil("the pings found all three dead", timeout: .seconds(5)) { pool.statistics.closed["broken"] == 3 }
                #expect(pool.available == 0)
            }
            try await withPool(size: 2, server: server, { $0.pingInterval = .disabled }) { pool in
                await pool.put(try await pool.get())
                try await server.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                // Long enough for the client to have read the server's close even under TSan
                // on a loaded machine (300 ms was once too short there).
                try await Task.sleep(for: .seconds(1))
                #expect(pool.statistics.closed["broken"] == nil)  // nobody pinged
                try await pool.ping()  // the dead connection is noticed at borrow time and replaced
            }
        }
    }

    @Test("Empty closes every idle connection, twice safely, and the pool keeps working")
    func empty() async throws {
        try await withPrivateServer("pool-empty") { server in
            // No pings: a connection out for a ping is not idle, and Empty leaves it be.
            try await withPool(size: 3, server: server, { $0.pingInterval = .disabled }) { pool in
                var leases: [RedisPool.Lease] = []
                for _ in 0..<3 { leases.append(try await pool.get()) }
                for lease in leases { await pool.put(lease) }
                try await expectClients(3, on: server)
                await pool.empty()
                await pool.empty()
                #expect(pool.available == 0)
                try await expectClients(0, on: server)
                try await pool.ping()
            }
        }
    }

    @Test("a connection that saw a connection-class error is never put back; one that saw an error reply is")
    func brokenNeverPutBack() async throws {
        try await withPrivateServer("pool-broken") { server in
            try await withPool(size: 2, server: server) { pool in
                let healthy = try await pool.get()
                await #expect(throws: RedisError.self) { try await healthy.connection.send("NOSUCHCOMMAND") }
                await pool.put(healthy)
                #expect(pool.available == 1)

                let doomed = try await pool.get()
                guard case .integer(let id) = try await doomed.connection.send("CLIENT", "ID") else {
                    Issue.record("CLIENT ID should be an integer")
                    return
                }
                try await server.cli("CLIENT", "KILL", "ID", String(id))
                await #expect(throws: RedisError.self) { try await doomed.connection.ping() }
                await pool.put(doomed)
                #expect(pool.available == 0)
                #expect(pool.statistics.closed["broken"] == 1)
            }
        }
    }

    @Test("the dial hook: the seed's AUTH example, in a few lines")
    func dialHook() async throws {
        let server = try await RedisServer.start(name: "pool-dial", password: "hook-secret")
        defer { server.destroy() }
        var options = RedisPoolOptions()
        options.dial = { configuration in
            let connection = try await RedisConnection.connect(configuration)
            try await connection.send("AUTH", "hook-secret")
            try await connection.send("SELECT", 1)
            return connection
        }
        let pool = RedisPool(configuration: RedisConfiguration(port: server.port), size: 2, options: options)
        try await whileRunning(pool) {
            try await pool.set("dialed", to: "yes")
            #expect(try await server.cli("-n", "1", "GET", "dialed") == "yes")
        }
    }

    @Test("automatic pipelining: 200 tasks share two connections, and a killed one is replaced")
    func autoPipelining() async throws {
        try await withPrivateServer("pool-auto") { server in
            try await withPool(size: 2, server: server, { $0.autoPipelining = AutoPipelining(connections: 2) }) { pool in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<200 {
                        group.addTask { () async throws -> Void in
                            for round in 0..<20 {
                                let reply = try await pool.send("ECHO", "\(task)-\(round)")
                                #expect(reply == .bulk("\(task)-\(round)"))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(pool.statistics.opened == 2)
                try await expectClients(2, on: server)
                try await server.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                var failures = 0
                for _ in 0..<10 {
                    do throws(RedisError) { try await pool.ping() } catch { failures += 1 }
                }
                #expect(failures <= 2)  // at most one per dead shared connection
                try await pool.ping()
                #expect(pool.statistics.opened == 4)
            }
        }
    }

    @Test("tasks that prefer the pool's executor run on its event loop, plain and auto-pipelined, and see every reply")
    func taskExecutor() async throws {
        try await withPrivateServer("pool-executor") { server in
            for shared in [nil, AutoPipelining(connections: 2)] {
                try await withPool(size: 4, server: server, { $0.autoPipelining = shared }) { pool in
                    let loop = pool.taskExecutor.eventLoop
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for task in 0..<50 {
                            group.addTask(executorPreference: pool.taskExecutor) { () async throws -> Void in
                                for round in 0..<20 {
                                    #expect(loop.inEventLoop)
                                    let reply = try await pool.send("ECHO", "\(task)-\(round)")
                                    #expect(reply == .bulk("\(task)-\(round)"))
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    try await withTaskExecutorPreference(pool.taskExecutor) { () async throws -> Void in
                        #expect(loop.inEventLoop)
                        #expect(try await pool.increment("executor-counter") > 0)
                    }
                }
            }
        }
    }
}

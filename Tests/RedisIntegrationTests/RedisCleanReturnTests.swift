import ConnectionKit
import NIOCore
import RESP
import Redis
import TestServers
import Testing

/// A pool hands out only connections as clean as new ones: whatever session a borrower left
/// (a transaction, a watch, another database, a subscription), the next borrower's write is
/// written, to database 0, and seen by another client.
@Suite("RedisPool hands back clean connections")
struct RedisCleanReturnTests {
    struct Abandoned: Error {}

    /// A pool of one connection, so the next borrower gets what the last one returned.
    func onePool(_ server: RedisServer, password: String? = nil) -> RedisPool {
        var configuration = RedisConfiguration(port: server.port)
        configuration.password = password
        var options = RedisPoolOptions(name: "clean-return")
        options.maxOpen = 1
        return RedisPool(configuration: configuration, size: 1, options: options)
    }

    /// Each way a borrower can leave its session changed.
    static let leftovers: [(name: String, reset: Bool, leave: @Sendable (RedisConnection) async throws -> Void)] = [
        (
            "MULTI with a queued SET, then throw", true,
            { connection in
                try await connection.send("MULTI")
                #expect(try await connection.send("SET", "abandoned", "1") == .simpleString("QUEUED"))
                throw Abandoned()
            }
        ),
        ("WATCH, then return", true, { connection in try await connection.send("WATCH", "next") }),
        ("SELECT 3, then return", true, { connection in try await connection.send("SELECT", 3) }),
        ("CLIENT SETNAME, then return", true, { connection in try await connection.send("CLIENT", "SETNAME", "borrowed") }),
        ("SUBSCRIBE, then return", false, { connection in try await connection.send("SUBSCRIBE", "news") }),
    ]

    @Test("whatever session a borrower leaves, the next borrower's SET is written to database 0", arguments: 0..<leftovers.count)
    func nextBorrowerIsClean(index: Int) async throws {
        let leftover = Self.leftovers[index]
        let server = try await RedisServer.start(name: "clean-return-\(index)", password: "s3cret")
        defer { server.destroy() }
        do {
            let pool = onePool(server, password: "s3cret")
            try await whileRunning(pool) {
                do {
                    try await pool.withConnection { connection in try await leftover.leave(connection) }
                } catch is Abandoned {}
                try await pool.set("next", to: "written")
                #expect(try await server.cli("GET", "next") == "written", "\(leftover.name)")
                #expect(try await server.cli("-n", "3", "GET", "next") == "", "\(leftover.name): not in database 3")
                #expect(try await server.cli("EXISTS", "abandoned") == "0", "\(leftover.name)")
                let statistics = pool.statistics
                #expect(statistics.resets == (leftover.reset ? 1 : 0), "\(leftover.name)")
                #expect(statistics.closed["dirty", default: 0] == (leftover.reset ? 0 : 1), "\(leftover.name)")
                #expect(try await pool.withConnection { $0.sessionIsClean })
            }
        }
    }

    @Test("a transaction opened and closed within the borrow leaves the session clean: nothing reset or closed")
    func finishedTransactionIsClean() async throws {
        try await withPrivateServer("clean-return-exec") { server in
            let pool = onePool(server)
            try await whileRunning(pool) {
                for _ in 0..<3 {
                    _ = try await pool.withConnection { connection in
                        try await connection.send("WATCH", "n")
                        try await connection.send("MULTI")
                        try await connection.send("INCR", "n")
                        return try await connection.send("EXEC")
                    }
                }
                #expect(try await server.cli("GET", "n") == "3")
                #expect(pool.statistics.resets == 0)
                #expect(pool.statistics.closed["dirty", default: 0] == 0)
            }
        }
    }

    @Test("no typed helper reports +QUEUED as success: inside MULTI, each one throws unexpectedReply and nothing is written")
    func queuedIsNoSuccess() async throws {
        try await withPrivateServer("clean-return-queued") { server in
            let connection = try await RedisConnection.connect(RedisConfiguration(port: server.port))
            try await connection.send("MULTI")
            let helpers: [(String, () async throws -> Void)] = [
                ("ping", { try await connection.ping() }),
                ("get", { _ = try await connection.get("k") }),
                ("getString", { _ = try await connection.getString("k") }),
                ("set", { try await connection.set("k", to: "v") }),
                ("set with expiry", { try await connection.set("k", to: "v", expiresIn: .seconds(60)) }),
                ("delete", { try await connection.delete("k") }),
                ("increment", { try await connection.increment("n") }),
                ("publish", { try await connection.publish("m", to: "c") }),
            ]
            for (name, helper) in helpers {
                do {
                    try await helper()
                    Issue.record("\(name) reported +QUEUED as success")
                } catch {
                    #expect((error as? RedisError)?.code == .unexpectedReply, "\(name): \(error)")
                }
            }
            #expect(!connection.sessionIsClean)
            #expect(await connection.resetSession())
            #expect(connection.sessionIsClean)
            #expect(try await server.cli("EXISTS", "k", "n") == "0", "the queued commands were discarded, never run")
            try await connection.set("k", to: "v")
            #expect(try await connection.getString("k") == "v")
            await connection.close()
        }
    }

    @Test("commands that would desynchronise replies (CLIENT REPLY, MONITOR) are never sent, on any connection")
    func replyBreakersRefused() async throws {
        try await withPrivateServer("clean-return-reply") { server in
            let connection = try await RedisConnection.connect(RedisConfiguration(port: server.port))
            for command in [RedisCommand("CLIENT", "REPLY", "OFF"), RedisCommand("client", "reply", "skip"), RedisCommand("MONITOR")] {
                do {
                    _ = try await connection.send(command)
                    Issue.record("\(command.name) was sent")
                } catch {
                    #expect((error as? RedisError)?.code == .misuse, "\(error)")
                }
                #expect(await connection.pipeline([RedisCommand("PING"), command]).allSatisfy { (try? $0.get()) == nil })
            }
            #expect(connection.sessionIsClean)
            try await connection.set("k", to: "v")
            #expect(try await connection.getString("k") == "v", "every reply still reaches its own request")
            await connection.close()
        }
    }

    @Test("session commands are refused where each command may run on another connection: nothing is sent")
    func sessionCommandsRefusedPerCommand() async throws {
        try await withPrivateServer("clean-return-refused") { server in
            for autoPipelining in [false, true] {
                var options = RedisPoolOptions(name: "refusing")
                if autoPipelining { options.autoPipelining = AutoPipelining(connections: 1) }
                let pool = RedisPool(configuration: RedisConfiguration(port: server.port), size: 1, options: options)
                try await whileRunning(pool) {
                    for command in [
                        RedisCommand("MULTI"), RedisCommand("select", 2), RedisCommand("SUBSCRIBE", "c"), RedisCommand("WATCH", "k"),
                    ] {
                        do {
                            _ = try await pool.send(command)
                            Issue.record("\(command.name) was sent")
                        } catch {
                            #expect((error as? RedisError)?.code == .misuse, "\(error)")
                        }
                    }
                    #expect(try await pool.send(RedisCommand("CLIENT", "ID")) != .null, "CLIENT ID changes nothing")
                    try await pool.set("k", to: "v")
                    #expect(try await server.cli("GET", "k") == "v")
                }
            }
        }
    }
}

/// The same through a ``SentinelClient``: a lease goes back to the master's pool only as clean as a
/// new connection, and the master's runner, where each command may take another connection, refuses
/// session commands.
@Suite("SentinelClient hands back clean leases", .timeLimit(.minutes(2)))
struct SentinelCleanReturnTests {
    @Test("whatever session a lease's borrower leaves, the next lease's SET is written to database 0; the runner refuses session commands")
    func nextLeaseIsClean() async throws {
        try await withTopology("clean-lease") { topology in
            try await withSentinelClient(
                topology,
                {
                    $0.poolSize = 1
                    $0.poolOptions.maxOpen = 1
                }
            ) { client in
                let name = topology.masterName
                let master = topology.servers[0]
                for leftover in RedisCleanReturnTests.leftovers {
                    do {
                        try await client.withMaster(name) { lease in try await leftover.leave(lease.connection) }
                    } catch is RedisCleanReturnTests.Abandoned {}
                    try await client.withMaster(name) { lease in
                        #expect(lease.connection.sessionIsClean, "\(leftover.name)")
                        _ = try await lease.send("SET", "next", leftover.name)
                    }
                    #expect(try await master.cli("GET", "next") == leftover.name, "\(leftover.name)")
                    #expect(try await master.cli("-n", "3", "GET", "next") == "", "\(leftover.name): not in database 3")
                    #expect(try await master.cli("EXISTS", "abandoned") == "0", "\(leftover.name)")
                }
                for command in [RedisCommand("MULTI"), RedisCommand("SELECT", 3), RedisCommand("WATCH", "k")] {
                    do {
                        _ = try await client.master(name).send(command)
                        Issue.record("\(command.name) was sent through the master's runner")
                    } catch {
                        #expect((error as? RedisError)?.code == .misuse, "\(error)")
                    }
                }
            }
        }
    }
}

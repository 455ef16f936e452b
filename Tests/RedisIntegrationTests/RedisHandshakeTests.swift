import NIOCore
import RESP
import Redis
import TestServers
import TestSupport
import Testing

/// A server that wants a password, and an ACL user `alice`, shared by these tests.
private let passwordServer = StartedOnce { () async throws -> RedisServer in
    let server = try await RedisServer.start(name: "auth", password: "s3cret")
    try await server.cli("ACL", "SETUSER", "alice", "on", ">wonderland", "~*", "+@all")
    return server
}

@Suite("Connecting: AUTH, SELECT, CLIENT SETNAME, HELLO 3, URLs and refused connections")
struct RedisHandshakeTests {
    @Test("password-only AUTH (requirepass) lets commands through")
    func passwordOnly() async throws {
        let server = try await passwordServer.value()
        var configuration = RedisConfiguration(port: server.port)
        configuration.password = "s3cret"
        let connection = try await RedisConnection.connect(configuration)
        defer { Task { await connection.close() } }
        try await connection.ping()
    }

    @Test("AUTH with an ACL user name and password")
    func aclUser() async throws {
        let server = try await passwordServer.value()
        let configuration = try RedisConfiguration(url: "redis://alice:wonderland@127.0.0.1:\(server.port)")
        let connection = try await RedisConnection.connect(configuration)
        defer { Task { await connection.close() } }
        #expect(try await connection.send("ACL", "WHOAMI") == .bulk("alice"))
    }

    @Test("no password: a command fails with a typed NOAUTH and the connection stays usable")
    func noAuth() async throws {
        let server = try await passwordServer.value()
        let connection = try await RedisConnection.connect(RedisConfiguration(port: server.port))
        defer { Task { await connection.close() } }
        do {
            _ = try await connection.get("k")
            Issue.record("GET without AUTH should fail")
        } catch {
            #expect(error.code == .server)
            #expect(error.prefix == "NOAUTH")
        }
        #expect(!connection.isBroken)
        try await connection.send("AUTH", "s3cret")
        try await connection.ping()
    }

    @Test("a wrong password fails the connect with WRONGPASS, and the password appears nowhere in the error")
    func wrongPassword() async throws {
        let server = try await passwordServer.value()
        for protocolVersion in [RedisProtocolVersion.resp2, .resp3] {
            var configuration = RedisConfiguration(port: server.port)
            configuration.password = "not-the-password"
            configuration.protocolVersion = protocolVersion
            do {
                _ = try await RedisConnection.connect(configuration)
                Issue.record("a wrong password should fail")
            } catch {
                #expect(error.code == .server)
                #expect(error.prefix == "WRONGPASS")
                #expect(!"\(error)".contains("not-the-password"))
                #expect(!String(reflecting: error).contains("not-the-password"))
            }
        }
    }

    @Test("SELECT: keys written through database 3 are not seen in database 0")
    func select() async throws {
        let inThree = try await connectToShared { $0.database = 3 }
        let inZero = try await connectToShared()
        defer {
            Task {
                await inThree.close()
                await inZero.close()
            }
        }
        let key = uniqueKey()
        try await inThree.set(key, to: "3")
        #expect(try await inThree.getString(key) == "3")
        #expect(try await inZero.getString(key) == nil)
    }

    @Test("CLIENT SETNAME under RESP2, and HELLO 3 with AUTH and SETNAME in one command")
    func clientName() async throws {
        let named = try await connectToShared { $0.clientName = "orders-worker" }
        defer { Task { await named.close() } }
        #expect(try await named.send("CLIENT", "GETNAME") == .bulk("orders-worker"))

        let server = try await passwordServer.value()
        var configuration = RedisConfiguration(port: server.port)
        configuration.username = "alice"
        configuration.password = "wonderland"
        configuration.clientName = "resp3-client"
        configuration.protocolVersion = .resp3
        configuration.database = 2
        let connection = try await RedisConnection.connect(configuration)
        defer { Task { await connection.close() } }
        #expect(try await connection.send("CLIENT", "GETNAME") == .bulk("resp3-client"))
        let info = try await connection.send("CLIENT", "INFO").string ?? ""
        #expect(info.contains("db=2"))
        #expect(info.contains("resp=3"))
        #expect(info.contains("user=alice"))
    }

    @Test("URLs: user, %-escaped password, port, database; a description without the password; malformed ones typed")
    func urls() throws {
        let configuration = try RedisConfiguration(url: "redis://bob:p%40ss%3Aword@cache.internal:6380/4")
        #expect(configuration.username == "bob")
        #expect(configuration.password == "p@ss:word")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 4)
        #expect(configuration.description == "redis://bob:***@cache.internal:6380/4")
        #expect(try RedisConfiguration(url: "redis://:secret@[::1]:7000").endpoint == "[::1]:7000")
        #expect(try RedisConfiguration(url: "127.0.0.1:6390").port == 6390)
        for bad in [
            "http://host", "redis://host:0", "redis://host:port", "redis://:pw@", "redis://host/x", "redis://h:1/-1", "redis://:%zz@h",
        ] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
        do {
            _ = try RedisConfiguration(url: "redis://u:hunter2@host:99999")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(!"\(error)".contains("hunter2"))
        }
    }

    @Test("a refused port and an unknown host fail fast with connectFailed")
    func refused() async throws {
        let port = try LoopbackPorts.free()
        let started = ContinuousClock.now
        await #expect { try await RedisConnection.connect(RedisConfiguration(port: port)) } throws: { error in
            (error as? RedisError)?.code == .connectFailed
        }
        await #expect { try await RedisConnection.connect(RedisConfiguration(host: "no-such-host.invalid", port: 6379)) } throws: { error in
            (error as? RedisError)?.code == .connectFailed
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}

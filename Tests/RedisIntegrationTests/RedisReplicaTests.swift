import NIOCore
import RESP
import Redis
import TestServers
import Testing

@Suite("A master and its replica from TestServers")
struct RedisReplicaTests {
    @Test("the replica follows the master; a write to it is a typed READONLY error and the connection stays usable")
    func replicaFollowsAndRefusesWrites() async throws {
        let master = try await RedisServer.start(name: "master")
        defer { master.destroy() }
        let replica = try await RedisServer.start(name: "replica", replicaOf: master.port)
        defer { replica.destroy() }
        try await replica.waitUntilReplicating()
        let toMaster = try await RedisConnection.connect(RedisConfiguration(port: master.port))
        let toReplica = try await RedisConnection.connect(RedisConfiguration(port: replica.port))
        defer {
            Task {
                await toMaster.close()
                await toReplica.close()
            }
        }
        let key = uniqueKey()
        try await toMaster.set(key, to: "replicated")
        // WAIT returns once the replica acknowledged the write.
        #expect(try await toMaster.send("WAIT", 1, 5000) == .integer(1))
        #expect(try await toReplica.getString(key) == "replicated")
        do {
            try await toReplica.set(key, to: "refused")
            Issue.record("a write to a replica should fail")
        } catch {
            #expect(error.code == .server)
            #expect(error.prefix == "READONLY")
            #expect(!error.isConnectionError)
        }
        #expect(!toReplica.isBroken)
        #expect(try await toReplica.getString(key) == "replicated")
    }
}

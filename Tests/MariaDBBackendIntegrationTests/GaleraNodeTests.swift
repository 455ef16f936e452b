import Foundation
import MariaDBBackend
import SQLCore
import SQLTestSupport
import TestServers
import Testing

/// MariaDBBackend against the nodes of a real three-node Galera cluster.
/// Serialized: later tests kill and stop nodes of the one shared cluster.
@Suite("MariaDB backend on a Galera cluster", .serialized, .timeLimit(.minutes(5)))
struct GaleraNodeTests {
    func connect(_ node: MariaDBServer, queryTimeout: Duration? = nil) async throws -> any SQLConnection {
        try await MariaDBDriver(queryTimeout: queryTimeout).connect(to: node.dsn)
    }

    @Test("the seed scenario and every type on a Galera node")
    func seedScenarioAndTypes() async throws {
        try await GaleraCluster.sharedGate.use {
            let cluster = try await GaleraCluster.shared()
            let db = try await connect(cluster.nodes[1])
            try await runSeedScenario(on: db)
            try await runTypeRoundTrips(on: db)
            await db.close()
        }
    }

    @Test("a write on node 1 is read on node 3")
    func crossNodeRead() async throws {
        try await GaleraCluster.sharedGate.use {
            let cluster = try await GaleraCluster.shared()
            let writer = try await connect(cluster.nodes[0])
            let reader = try await connect(cluster.nodes[2])
            let table = "galera_\(UInt32.random(in: 0...UInt32.max))"
            _ = try await writer.execute("CREATE TABLE \(table) (id INT PRIMARY KEY, v VARCHAR(20))")
            _ = try await writer.execute("INSERT INTO \(table) VALUES (?, ?)", [1, "from node 1"])
            // Causal reads: node 3 waits until it has applied everything committed before this read.
            _ = try await reader.execute("SET SESSION wsrep_sync_wait = 1")
            #expect(try await reader.query("SELECT v FROM \(table) WHERE id = ?", [1]).first?[0] == "from node 1")
            _ = try await writer.execute("DROP TABLE \(table)")
            await writer.close()
            await reader.close()
        }
    }

    @Test("SIGKILL of a node mid-query is a prompt connection error; the others keep writing; it rejoins")
    func killedNode() async throws {
        try await GaleraCluster.sharedGate.harm {
            let cluster = try await GaleraCluster.shared()
            let victim = cluster.nodes[1]
            let doomed = try await connect(victim)
            let survivor = try await connect(cluster.nodes[0])
            let table = "rejoin_\(UInt32.random(in: 0...UInt32.max))"
            _ = try await survivor.execute("CREATE TABLE \(table) (id INT PRIMARY KEY)")
            let query = Task { try await doomed.query("SELECT SLEEP(30)") }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            try await victim.kill()
            let lost = await expectSQLError(.connectionLost) { _ = try await query.value }
            #expect(lost?.kind == .connection)
            #expect(ContinuousClock.now - started < .seconds(5))
            try await cluster.waitUntilSynced(size: 2)
            _ = try await survivor.execute("INSERT INTO \(table) VALUES (?)", [1])
            try await victim.restart()
            try await cluster.waitUntilSynced(size: 3)
            let rejoined = try await connect(victim)
            _ = try await rejoined.execute("SET SESSION wsrep_sync_wait = 1")
            #expect(try await rejoined.query("SELECT COUNT(*) FROM \(table)")[0][0] == 1)
            _ = try await survivor.execute("DROP TABLE \(table)")
            for db in [doomed, survivor, rejoined] { await db.close() }
        }
    }

    @Test("a node cut off from the majority answers 1047 as nodeNotReady, and serves again once it rejoins")
    func nonPrimaryNode() async throws {
        try await GaleraCluster.sharedGate.harm {
            let cluster = try await GaleraCluster.shared()
            let isolated = try await connect(cluster.nodes[2])
            let table = "isolated_\(UInt32.random(in: 0...UInt32.max))"
            _ = try await isolated.execute("CREATE TABLE \(table) (id INT PRIMARY KEY)")
            await cluster.nodes[0].pause()
            await cluster.nodes[1].pause()
            var refusal: SQLError?
            let deadline = ContinuousClock.now + .seconds(30)
            while refusal == nil, ContinuousClock.now < deadline {
                do {
                    // SELECT 1 touches no table and is allowed: read the table.
                    _ = try await isolated.query("SELECT COUNT(*) FROM \(table) WHERE id = ?", [1])
                    try await Task.sleep(for: .milliseconds(200))
                } catch let error as SQLError {
                    refusal = error
                }
            }
            cluster.nodes[0].resume()
            cluster.nodes[1].resume()
            let error = try #require(refusal)
            #expect(error.code == .nodeNotReady, "\(error)")
            #expect(error.nativeCode == 1047)
            #expect(error.kind == .connection)
            try await cluster.waitUntilSynced(size: 3)
            let back = try await connect(cluster.nodes[2])
            #expect(try await back.query("SELECT COUNT(*) FROM \(table)")[0][0] == 0)
            _ = try await back.execute("DROP TABLE \(table)")
            await back.close()
            await isolated.close()
        }
    }
}

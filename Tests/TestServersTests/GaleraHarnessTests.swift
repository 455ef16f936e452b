import Foundation
import TestServers
import Testing

/// The Galera part of the harness, against three real nodes it starts.
@Suite("TestServers: MariaDB Galera", .timeLimit(.minutes(4)))
struct GaleraHarnessTests {
    @Test("three Synced nodes: a write on node 1 is read on node 3; a killed node rejoins")
    func lifecycle() async throws {
        let cluster = try await GaleraCluster.start()
        defer { cluster.destroy() }
        let (first, second, third) = (cluster.nodes[0], cluster.nodes[1], cluster.nodes[2])
        try await first.query("CREATE TABLE test.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO test.t VALUES (1, 42)")
        let deadline = ContinuousClock.now + .seconds(10)
        var seen = ""
        while seen != "42", ContinuousClock.now < deadline {
            seen = (try? await third.query("SELECT v FROM test.t WHERE id = 1")) ?? ""
        }
        #expect(seen == "42")

        try await second.kill()
        try await cluster.waitUntilSynced(size: 2)
        #expect(try await first.status("wsrep_ready") == "ON")
        try await first.query("INSERT INTO test.t VALUES (2, 43)")
        try await second.restart()
        try await cluster.waitUntilSynced(size: 3)
        #expect(try await second.query("SELECT COUNT(*) FROM test.t") == "2")
    }
}

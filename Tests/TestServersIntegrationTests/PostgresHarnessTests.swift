import Foundation
import TestServers
import Testing

/// The harness itself, against real PostgreSQL servers it starts.
@Suite("TestServers: PostgreSQL primary and standby", .timeLimit(.minutes(3)))
struct PostgresHarnessTests {
    @Test("a primary and a streaming standby: roles, replication, kill, promote, re-seed, pause")
    func lifecycle() async throws {
        let cluster = try await PostgresCluster.start(standbys: 1)
        defer { cluster.destroy() }
        let primary = cluster.primary
        let standby = try #require(cluster.standbys.first)
        #expect(try await primary.isInRecovery() == false)
        #expect(try await standby.isInRecovery() == true)

        try await primary.query("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
        let deadline = ContinuousClock.now + .seconds(10)
        var replicated = ""
        while replicated != "42", ContinuousClock.now < deadline {
            replicated = (try? await standby.query("SELECT v FROM t")) ?? ""
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(replicated == "42")

        // SIGSTOP: the port still accepts TCP, but no query is answered.
        await primary.pause()
        let paused = Task { try await primary.query("SELECT 1") }
        try await Task.sleep(for: .milliseconds(300))
        primary.resume()
        #expect(try await paused.value == "1")

        try await primary.kill()
        await #expect(throws: TestServerError.self) { try await primary.query("SELECT 1") }
        try await standby.promote()
        #expect(try await standby.isInRecovery() == false)
        try await standby.query("INSERT INTO t VALUES (43)")

        try await PostgresCluster.reseed(primary, from: standby)
        #expect(try await primary.isInRecovery() == true)
        #expect(try await primary.query("SELECT count(*) FROM t") == "2")
    }
}

import Foundation
import TestServers
import Testing

/// The MariaDB part of the harness, against a real server it starts.
@Suite("TestServers: MariaDB standalone", .timeLimit(.minutes(3)))
struct MariaDBHarnessTests {
    @Test("start, query, pause and resume, kill, restart with the data kept")
    func lifecycle() async throws {
        let server = try await MariaDBServer.start()
        defer { server.destroy() }
        try await server.query("CREATE TABLE test.t (v INT) ENGINE=InnoDB; INSERT INTO test.t VALUES (7)")
        #expect(try await server.query("SELECT v FROM test.t") == "7")
        #expect(try await server.query("SELECT COUNT(*) FROM mysql.user WHERE user = 'test'") == "1")

        await server.pause()
        let paused = Task { try await server.query("SELECT 1") }
        try await Task.sleep(for: .milliseconds(300))
        server.resume()
        #expect(try await paused.value == "1")

        try await server.kill()
        await #expect(throws: TestServerError.self) { try await server.query("SELECT 1") }
        try await server.restart()
        #expect(try await server.query("SELECT v FROM test.t") == "7")
    }
}

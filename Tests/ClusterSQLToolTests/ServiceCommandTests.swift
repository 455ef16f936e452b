import Foundation
import TestServers
import Testing

@Suite("clustersql check and stats --service against a real Sentinel deployment", .timeLimit(.minutes(2)))
struct ServiceCommandTests {
    let tool = ClusterSQLToolTests()

    @Test("check --service shows the master, the replica and what each sentinel says; exit 1 with one line when none serves")
    func checkService() async throws {
        let topology = try await SentinelTopology.start(
            masterName: "toolmaster", replicas: 1, dataPassword: "tool-data-pw", sentinelPassword: "tool-sentinel-pw")
        defer { topology.destroy() }
        let sentinels = topology.sentinelAddresses.map { "\"\($0)\"" }.joined(separator: ", ")
        let (config, folder) = try tool.makeConfig(extra: """
            [services.cache]
            kind = "sentinel"
            sentinels = [\(sentinels)]
            master_name = "toolmaster"
            sentinel_password = "tool-sentinel-pw"
            password = "tool-data-pw"
            [services.nowhere]
            kind = "sentinel"
            sentinels = ["127.0.0.1:\(try Commands.freePort())"]
            master_name = "toolmaster"
            sentinel_password = "tool-sentinel-pw"
            """)
        defer { try? FileManager.default.removeItem(at: folder) }

        let check = try await tool.run(["check", "--config", config, "--service", "cache"])
        #expect(check.status == 0, "\(check.output)\(check.errors)")
        #expect(check.output.contains("master 127.0.0.1:\(topology.servers[0].port) verified (1 replica)"), "\(check.output)")
        #expect(check.output.contains("127.0.0.1:\(topology.servers[1].port) | replica"), "\(check.output)")
        for sentinel in topology.sentinelAddresses { #expect(check.output.contains(sentinel)) }

        let stats = try await tool.run(["stats", "--json", "--config", config, "--service", "cache"])
        #expect(stats.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any]
        #expect(report?["master"] as? String == "127.0.0.1:\(topology.servers[0].port)")

        let nowhere = try await tool.run(["check", "--config", config, "--service", "nowhere"])
        #expect(nowhere.status == 1)
        #expect(nowhere.output.contains("NO MASTER"), "\(nowhere.output)")
        #expect(nowhere.output.contains("sentinelsUnreachable"), "\(nowhere.output)")

        let unknown = try await tool.run(["check", "--config", config, "--service", "missing"])
        #expect(unknown.status == 1)
        #expect(unknown.errors.split(separator: "\n").count == 1)
        #expect(unknown.errors.contains("no service named missing"))
        for output in [check.output, stats.output, nowhere.output, unknown.errors] {
            #expect(!output.contains("tool-data-pw") && !output.contains("tool-sentinel-pw"))
        }
    }
}

import Foundation
import TestServers
import TestSupport
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
        let (config, folder) = try tool.makeConfig(
            extra: """
                [services.cache]
                kind = "sentinel"
                sentinels = [\(sentinels)]
                master_name = "toolmaster"
                sentinel_password = "tool-sentinel-pw"
                password = "tool-data-pw"
                [services.nowhere]
                kind = "sentinel"
                sentinels = ["127.0.0.1:\(try LoopbackPorts.free())"]
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

    @Test("check --service on memcached: each server up or down with latency, items and hit rate; degraded is exit 0, none up is exit 1")
    func checkMemcached() async throws {
        let first = try await MemcachedServer.start(name: "tool-1")
        let second = try await MemcachedServer.start(name: "tool-2")
        defer {
            first.destroy()
            second.destroy()
        }
        let (config, folder) = try tool.makeConfig(
            extra: """
                [services.pages]
                kind = "memcached"
                servers = ["\(first.address)", "\(second.address)"]
                """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let healthy = try await tool.run(["check", "--config", config, "--service", "pages"])
        #expect(healthy.status == 0, "\(healthy.output)\(healthy.errors)")
        #expect(healthy.output.contains("all 2 servers up"), "\(healthy.output)")
        #expect(healthy.output.contains(first.address) && healthy.output.contains(second.address))
        try await second.kill()
        let degraded = try await tool.run(["check", "--config", config, "--service", "pages"])
        #expect(degraded.status == 0)
        #expect(degraded.output.contains("DEGRADED: 1 of 2 servers up"), "\(degraded.output)")
        let json = try await tool.run(["stats", "--json", "--config", config, "--service", "pages"])
        let report = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect((report?["servers"] as? [[String: Any]])?.count == 2)
        try await first.kill()
        let down = try await tool.run(["check", "--config", config, "--service", "pages"])
        #expect(down.status == 1)
        #expect(down.output.contains("NO SERVER UP"), "\(down.output)")
    }

    @Test(
        "check --service over TLS (config.toml's tls keys): a TLS Redis and memcached answer; a wrong root is a one-line tlsFailed per server"
    )
    func checkOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let stranger = try await TestCertificates.make(name: "tool-stranger")
        let redis = try await RedisServer.start(name: "tool-tls", password: "tool-tls-pw", tls: ServerTLS(certificates: certificates))
        let memcached = try await MemcachedServer.start(
            name: "tool-tls", tls: ServerTLS(certificates: certificates, requireClientCertificate: true))
        defer {
            redis.destroy()
            memcached.destroy()
        }
        let (config, folder) = try tool.makeConfig(
            extra: """
                [services.session]
                kind = "redis"
                url = "rediss://:tool-tls-pw@127.0.0.1:\(redis.port)"
                tls_ca_file = "\(certificates.authority)"
                [services.pages]
                kind = "memcached"
                servers = ["\(memcached.address)"]
                tls_ca_file = "\(certificates.authority)"
                tls_cert_file = "\(certificates.clientCertificate)"
                tls_key_file = "\(certificates.clientKey)"
                [services.stranger]
                kind = "redis"
                url = "rediss://:tool-tls-pw@127.0.0.1:\(redis.port)"
                tls_ca_file = "\(stranger.authority)"
                """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try await tool.run(["check", "--config", config, "--service", "session"])
        #expect(session.status == 0, "\(session.output)\(session.errors)")
        let pages = try await tool.run(["check", "--config", config, "--service", "pages"])
        #expect(pages.status == 0, "\(pages.output)\(pages.errors)")
        #expect(pages.output.contains("all 1 servers up"), "\(pages.output)")
        let refused = try await tool.run(["check", "--config", config, "--service", "stranger"])
        #expect(refused.status == 1)
        #expect(refused.output.contains("tlsFailed"), "\(refused.output)\(refused.errors)")
        for output in [session.output, session.errors, pages.output, refused.output, refused.errors] {
            #expect(!output.contains("tool-tls-pw"))
        }
    }
}

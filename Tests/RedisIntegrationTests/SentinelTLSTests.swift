import NIOClientSupport
import RESP
import Redis
import TestServers
import TestSupport
import Testing

@Suite("SentinelClient over TLS: sentinels and data nodes that speak only TLS and require client certificates", .timeLimit(.minutes(2)))
struct SentinelTLSTests {
    @Test("master writes, replica reads and a manual failover followed, every connection over verified TLS with a client certificate")
    func failoverOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let tls = ClientTLS(
            trustRootsFile: certificates.authority, certificateFile: certificates.clientCertificate, privateKeyFile: certificates.clientKey)
        let server = ServerTLS(certificates: certificates, requireClientCertificate: true)
        try await withTopology("tls", dataPassword: "tls-data", tls: server) { topology in
            // A client that does not speak TLS to the sentinels finds none.
            let plain = try SentinelClient(configuration: sentinelConfiguration(topology) { $0.dataNodes.tls = tls })
            let unreachable = await #expect(throws: RedisError.self) {
                try await whileRunning(plain) { _ = try await plain.send(RedisCommand("PING"), toMaster: topology.masterName) }
            }
            #expect(unreachable?.code == .sentinelsUnreachable, "\(String(describing: unreachable))")

            try await withSentinelClient(
                topology,
                {
                    $0.sentinelTLS = tls
                    $0.dataNodes.tls = tls
                    // The handshakes to the sentinels count against this bound; instrumented BoringSSL is slow.
                    $0.sentinelTimeout = TestTiming.bound(.milliseconds(500))
                }
            ) { client in
                let master = client.master(topology.masterName)
                try await master.send("SET", "tls:sentinel", "before")
                try await eventually("the replica serves the write") {
                    (try? await client.replicas(topology.masterName).send("GET", "tls:sentinel")) == .bulk("before")
                }
                let old = topology.servers[0]
                try await topology.sentinels[0].cli("SENTINEL", "FAILOVER", topology.masterName)
                let new = try await topology.waitForFailover(from: old)
                try await eventually("the client follows") { client.currentMaster(topology.masterName) == new.sentinelAddress }
                try await eventually("writes reach the new master") {
                    (try? await master.send("SET", "tls:sentinel", "after")) == .simpleString("OK")
                }
                #expect(try await new.cli("GET", "tls:sentinel") == "after")
            }
        }
    }
}

import Memcached
import NIOClientSupport
import NIOCore
import TestServers
import Testing

/// The error connecting to `server` with `tls` and asking its version ends with, or `nil` when it answers.
private func versionFailure(_ server: MemcachedServer, _ tls: ClientTLS?) async -> MemcachedError? {
    var configuration = MemcachedServerConfiguration(port: server.port)
    // Room for reading the system's bundle on NIO's blocking pool, which other suites' lookups may hold
    // up; a refusal comes at once whatever the bound.
    configuration.connectTimeout = .seconds(20)
    configuration.readTimeout = .seconds(2)
    configuration.tls = tls
    do {
        let connection = try await MemcachedConnection.connect(configuration)
        defer { Task { await connection.close() } }
        _ = try await connection.version()
        return nil
    } catch {
        return error
    }
}

@Suite(
    "TLS to real memcached servers (-Z): verified handshakes and refusals (healing over TLS: HealingMemcachedClientTests)",
    .timeLimit(.minutes(2)))
struct MemcachedTLSTests {
    @Test("a client over two TLS servers: sets, gets, get-many; the description names the roots, never a key")
    func clientOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let tls = ClientTLS(trustRootsFile: certificates.authority)
        #expect("\(tls)".contains(certificates.authority))
        try await withHealingClient("tls", count: 2, tls: (ServerTLS(certificates: certificates), tls)) { _, client in
            for index in 0..<40 { try await client.set("tls:\(index)", to: ByteBuffer(string: "value \(index)")) }
            #expect(try await client.get("tls:7")?.string == "value 7")
            let many = await client.getMany((0..<40).map { "tls:\($0)" })
            #expect(many.items.count == 40)
            #expect(many.isComplete)
        }
    }

    @Test("refused: another authority, a name the certificate lacks, no client certificate where one is required, plain TCP to a TLS port")
    func refused() async throws {
        let certificates = try await TestCertificates.shared()
        let stranger = try await TestCertificates.make(name: "memcached-stranger")
        let plain = try await MemcachedServer.start(name: "tls-refused", tls: ServerTLS(certificates: certificates))
        let mutual = try await MemcachedServer.start(
            name: "tls-mutual", tls: ServerTLS(certificates: certificates, requireClientCertificate: true))
        let named = try await MemcachedServer.start(
            name: "tls-named", tls: ServerTLS(certificates: certificates, presentsNameOnly: true))
        defer { for server in [plain, mutual, named] { server.destroy() } }
        let refusals: [(String, MemcachedServer, ClientTLS)] = [
            ("another authority", plain, ClientTLS(trustRootsFile: stranger.authority)),
            ("the system's roots", plain, ClientTLS()),
            ("a certificate without the address", named, ClientTLS(trustRootsFile: certificates.authority)),
            ("no client certificate", mutual, ClientTLS(trustRootsFile: certificates.authority)),
        ]
        for (what, server, tls) in refusals {
            let failure = await versionFailure(server, tls)
            #expect(failure?.code == .tlsFailed, "\(what): \(String(describing: failure))")
            #expect(failure?.isConnectionError == true, "\(what): a TLS refusal counts against the server's health")
        }
        #expect(
            await versionFailure(named, ClientTLS(trustRootsFile: certificates.authority, serverName: TestCertificates.namedHost)) == nil)
        let plainFailure = await versionFailure(plain, nil)
        #expect(plainFailure?.isConnectionError == true, "plain TCP to a TLS port: \(String(describing: plainFailure))")
        let missing = await versionFailure(plain, ClientTLS(trustRootsFile: "/nonexistent/ca.pem"))
        #expect(missing?.code == .invalidConfiguration)
        #expect(missing?.message.contains("/nonexistent/ca.pem") == true)
    }
}

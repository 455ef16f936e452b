import ConnectionKit
import NIOClientSupport
import RESP
import Redis
import TestServers
import TestSupport
import Testing

/// A redis-server that speaks only TLS with the shared test certificates, started once per test process.
private let tlsServer = StartedOnce {
    try await RedisServer.start(name: "tls", tls: ServerTLS(certificates: try await TestCertificates.shared()))
}

/// A redis-server that also requires a client certificate signed by the test authority.
private let mutualTLSServer = StartedOnce {
    try await RedisServer.start(
        name: "mtls", password: "tls-secret",
        tls: ServerTLS(certificates: try await TestCertificates.shared(), requireClientCertificate: true))
}

/// A redis-server whose certificate names only `TestCertificates.namedHost`, not its address.
private let namedTLSServer = StartedOnce {
    try await RedisServer.start(
        name: "named-tls", tls: ServerTLS(certificates: try await TestCertificates.shared(), presentsNameOnly: true))
}

/// A configuration for `server` that trusts the test authority, with `configure` applied.
private func configuration(
    _ server: RedisServer, _ configure: (inout RedisConfiguration, TestCertificates) -> Void = { _, _ in }
) async throws -> RedisConfiguration {
    let certificates = try await TestCertificates.shared()
    var configuration = try RedisConfiguration(url: server.url)
    configuration.tls = ClientTLS(trustRootsFile: certificates.authority)
    configuration.connectTimeout = TestTiming.bound(.seconds(3))  // instrumented BoringSSL handshakes are slow
    configure(&configuration, certificates)
    return configuration
}

/// The error connecting and sending a PING ends with (a refused client certificate shows only at the
/// first read under TLS 1.3), or `nil` when the PING is answered.
private func pingFailure(_ configuration: RedisConfiguration) async -> RedisError? {
    do {
        let connection = try await RedisConnection.connect(configuration)
        defer { Task { await connection.close() } }
        _ = try await connection.send("PING")
        return nil
    } catch {
        return error
    }
}

@Suite("TLS to a real redis-server: verified handshakes, refused roots, names and client certificates", .timeLimit(.minutes(2)))
struct RedisTLSTests {
    @Test("rediss:// with the authority as root: commands, a pipeline and a pool over TLS; the description says rediss")
    func verifiedConnection() async throws {
        let server = try await tlsServer.value()
        let settings = try await configuration(server)
        #expect(settings.description.hasPrefix("rediss://"))
        let connection = try await RedisConnection.connect(settings)
        #expect(try await connection.send("SET", "tls:key", "over tls") == .simpleString("OK"))
        #expect(try await connection.send("GET", "tls:key") == .bulk("over tls"))
        let replies = await connection.pipeline((0..<50).map { RedisCommand("INCR", "tls:counter:\($0 % 5)") })
        #expect(replies.allSatisfy { (try? $0.get()) != nil })
        await connection.close()

        let pool = RedisPool(configuration: settings, size: 4)
        try await whileRunning(pool) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 { group.addTask { _ = try await pool.send("SET", "tls:pool:\(index)", index) } }
                try await group.waitForAll()
            }
            #expect(try await pool.send("GET", "tls:pool:39") == .bulk("39"))
        }
    }

    @Test("a client certificate where the server requires one; with a password sent inside TLS")
    func clientCertificate() async throws {
        let server = try await mutualTLSServer.value()
        let settings = try await configuration(server) { settings, certificates in
            settings.tls = ClientTLS(
                trustRootsFile: certificates.authority, certificateFile: certificates.clientCertificate,
                privateKeyFile: certificates.clientKey)
        }
        #expect(await pingFailure(settings) == nil)
        let refused = await pingFailure(try await configuration(server))
        #expect(refused?.code == .tlsFailed, "no client certificate: \(String(describing: refused))")
        #expect(refused.map { !"\($0)".contains("tls-secret") } ?? true)
    }

    @Test(
        "refused: the system's roots, another authority, a certificate that names neither the host nor the server name; each a typed tlsFailed error"
    )
    func refusedServers() async throws {
        let server = try await tlsServer.value()
        let named = try await namedTLSServer.value()
        let stranger = try await TestCertificates.make(name: "stranger")
        let cases: [(String, RedisServer, (inout RedisConfiguration, TestCertificates) -> Void)] = [
            (
                "the system's roots", server,
                { settings, _ in
                    settings.tls = ClientTLS()
                    // The system bundle is read on NIO's blocking pool, which other suites' lookups may hold up.
                    settings.connectTimeout = .seconds(20)
                }
            ),
            ("another authority", server, { settings, _ in settings.tls = ClientTLS(trustRootsFile: stranger.authority) }),
            ("a certificate without the address", named, { _, _ in }),
            (
                "a certificate without the server name", named,
                { settings, certificates in
                    settings.tls = ClientTLS(trustRootsFile: certificates.authority, serverName: "other.clustersql.test")
                }
            ),
        ]
        for (what, target, configure) in cases {
            let failure = await pingFailure(try await configuration(target, configure))
            #expect(failure?.code == .tlsFailed, "\(what): \(String(describing: failure))")
            #expect(failure?.endpoint == "127.0.0.1:\(target.port)", "\(what)")
        }
        // Checking less, or the right name, makes the same servers acceptable.
        let accepted: [(RedisServer, (inout RedisConfiguration, TestCertificates) -> Void)] = [
            (server, { settings, _ in settings.tls = ClientTLS(verification: .none) }),
            (
                named,
                { settings, certificates in settings.tls = ClientTLS(verification: .certificateOnly, trustRootsFile: certificates.authority)
                }
            ),
            (
                named,
                { settings, certificates in
                    settings.tls = ClientTLS(trustRootsFile: certificates.authority, serverName: TestCertificates.namedHost)
                }
            ),
        ]
        for (target, configure) in accepted { #expect(await pingFailure(try await configuration(target, configure)) == nil) }
    }

    @Test("plain TCP to a TLS port and TLS to a plain port both fail typed, within the connect timeout")
    func wrongTransport() async throws {
        let server = try await tlsServer.value()
        let clock = ContinuousClock()
        var plain = RedisConfiguration(port: server.port)
        plain.connectTimeout = .seconds(2)
        plain.readTimeout = .seconds(2)
        let started = clock.now
        let plainFailure = await pingFailure(plain)
        #expect(plainFailure?.isConnectionError == true, "\(String(describing: plainFailure))")
        #expect(clock.now - started < TestTiming.bound(.seconds(5)))

        let plainServer = try await RedisServer.shared()
        // redis-server reads the ClientHello as the start of an inline command and waits for its end:
        // the handshake never finishes, and the connect ends at its timeout. (With 500 ms, under the
        // second pass's load, the timeout once fired before the TCP connect had finished.)
        let tlsToPlain = await pingFailure(
            try await configuration(plainServer) { settings, _ in settings.connectTimeout = .seconds(2) })
        #expect(tlsToPlain?.code == .connectTimeout, "\(String(describing: tlsToPlain))")
        #expect(tlsToPlain?.message.contains("TLS handshake") == true, "\(String(describing: tlsToPlain))")
    }

    @Test(
        "a trust file that is missing or not PEM, a certificate without its key, an IP address as server name: invalidConfiguration naming what, nothing sent"
    )
    func unusableFiles() async throws {
        let server = try await tlsServer.value()
        let certificates = try await TestCertificates.shared()
        var cases: [(ClientTLS, String)] = [
            (ClientTLS(trustRootsFile: "/nonexistent/ca.crt"), "/nonexistent/ca.crt"),
            (ClientTLS(trustRootsFile: "/etc/hostname"), "/etc/hostname"),
            (ClientTLS(trustRootsFile: certificates.authority, certificateFile: certificates.clientCertificate), "private key"),
            (
                ClientTLS(
                    trustRootsFile: certificates.authority, certificateFile: certificates.clientCertificate, privateKeyFile: "/etc/hostname"
                ),
                "/etc/hostname"
            ),
        ]
        cases.append((ClientTLS(trustRootsFile: certificates.authority, serverName: "127.0.0.1"), "IP address"))
        for (tls, named) in cases {
            let failure = await pingFailure(try await configuration(server) { settings, _ in settings.tls = tls })
            #expect(failure?.code == .invalidConfiguration, "\(tls): \(String(describing: failure))")
            #expect(failure?.message.contains(named) == true, "\(String(describing: failure))")
        }
    }

    @Test("closing a TLS connection to a stopped server takes about a second (the close_notify wait is capped), not swift-nio-ssl's 5 s")
    func closeStoppedServer() async throws {
        let server = try await RedisServer.start(name: "tls-stopped", tls: ServerTLS(certificates: try await TestCertificates.shared()))
        defer {
            server.resume()
            server.destroy()
        }
        let connection = try await RedisConnection.connect(try await configuration(server))
        #expect(try await connection.send("PING") == .simpleString("PONG"))
        await server.pause()
        let started = ContinuousClock.now
        await connection.close()
        let took = started.duration(to: .now)
        #expect(took < TestTiming.bound(.seconds(3)), "closing took \(took)")
    }
}

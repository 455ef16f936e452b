import NIOCore
import NIOSSL
import TestServers
import Testing

@testable import NIOClientSupport

@Suite("ClientTLS: one context per value, server names, equality (no server)")
struct ClientTLSTests {
    @Test("forty connects at once on a new value share one SSL context, made once; a copy shares it too")
    func oneContext() async throws {
        let certificates = try await TestCertificates.shared()
        let tls = ClientTLS(
            trustRootsFile: certificates.authority, certificateFile: certificates.clientCertificate, privateKeyFile: certificates.clientKey)
        let deadline = ContinuousClock.now + .seconds(60)
        let contexts = try await withThrowingTaskGroup(of: ObjectIdentifier.self) { group in
            for _ in 0..<40 { group.addTask { ObjectIdentifier(try await tls.setup(forHost: "127.0.0.1", deadline: deadline).context) } }
            return try await group.reduce(into: Set<ObjectIdentifier>()) { $0.insert($1) }
        }
        #expect(contexts.count == 1)
        let copy = tls
        #expect(ObjectIdentifier(try await copy.setup(forHost: "localhost", deadline: deadline).context) == contexts.first)
    }

    @Test(
        "the name sent and checked: the host when it is a name, none for an address, the server name over both; an address or an empty name refused"
    )
    func serverNames() async throws {
        // The test authority, not the system's roots: reading the system bundle under ThreadSanitizer, on
        // NIO's blocking pool shared with the other suites, was seen to take over 10 s.
        let roots = try await TestCertificates.shared().authority
        let deadline = ContinuousClock.now + .seconds(60)
        let tls = ClientTLS(verification: .none, trustRootsFile: roots)
        #expect(try await tls.setup(forHost: "redis.internal", deadline: deadline).serverHostname == "redis.internal")
        #expect(try await tls.setup(forHost: "10.0.0.7", deadline: deadline).serverHostname == nil)
        #expect(try await tls.setup(forHost: "::1", deadline: deadline).serverHostname == nil)
        let named = ClientTLS(verification: .none, trustRootsFile: roots, serverName: "cache.internal")
        #expect(try await named.setup(forHost: "10.0.0.7", deadline: deadline).serverHostname == "cache.internal")
        for bad in ["10.0.0.7", "", String(repeating: "a", count: 256)] {
            await #expect(throws: ClientTLSFailure.self) {
                _ = try await ClientTLS(verification: .none, serverName: bad).setup(forHost: "h", deadline: deadline)
            }
        }
    }

    @Test("equal settings are equal and hash equally; any field apart makes them differ; the description shows no key")
    func equality() {
        let base = ClientTLS(trustRootsFile: "/ca.crt", certificateFile: "/c.crt", privateKeyFile: "/c.key", serverName: "s")
        let same = ClientTLS(trustRootsFile: "/ca.crt", certificateFile: "/c.crt", privateKeyFile: "/c.key", serverName: "s")
        #expect(base == same && base.hashValue == same.hashValue)
        let others = [
            ClientTLS(
                verification: .certificateOnly, trustRootsFile: "/ca.crt", certificateFile: "/c.crt", privateKeyFile: "/c.key",
                serverName: "s"),
            ClientTLS(trustRootsFile: "/other.crt", certificateFile: "/c.crt", privateKeyFile: "/c.key", serverName: "s"),
            ClientTLS(trustRootsFile: "/ca.crt", serverName: "s"),
            ClientTLS(trustRootsFile: "/ca.crt", certificateFile: "/c.crt", privateKeyFile: "/c.key"),
            ClientTLS(configuration: .makeClientConfiguration()),
        ]
        for other in others { #expect(other != base) }
        // swift-nio-ssl compares its configurations at best effort (two made apart may differ: seen under
        // ThreadSanitizer); a copy is always equal to its original and hashes the same.
        let custom = ClientTLS(configuration: .makeClientConfiguration(), serverName: "s")
        let copy = custom
        #expect(custom == copy && custom.hashValue == copy.hashValue)
        #expect(custom != ClientTLS(configuration: .makeClientConfiguration(), serverName: "t"))
        #expect(!base.description.contains("/c.key"))
    }
}

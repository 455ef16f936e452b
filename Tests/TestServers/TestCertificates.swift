import Foundation

/// A throw-away certificate authority and two certificates it signed, made with
/// openssl for TLS tests: one for servers (`localhost` and `127.0.0.1`) and one
/// for clients. EC P-256 keys, valid for two days, in a temporary folder that
/// memcached's user can read when the tests run as root.
public struct TestCertificates: Sendable {
    /// The authority's certificate: the root a client trusts, and the one servers check client certificates against.
    public let authority: String
    /// The server certificate (names `localhost` and `127.0.0.1`).
    public let serverCertificate: String
    /// The server certificate's private key.
    public let serverKey: String
    /// A server certificate that names only ``namedHost`` (no address): for checks of the server's name.
    public let namedServerCertificate: String
    /// Its private key.
    public let namedServerKey: String
    /// A client certificate (`CN=clustersql-client`).
    public let clientCertificate: String
    /// The client certificate's private key.
    public let clientKey: String

    /// The one name ``namedServerCertificate`` holds.
    public static let namedHost = "cache.clustersql.test"

    /// The shared authority and certificates of this test process, made on first use.
    public static func shared() async throws -> TestCertificates {
        try await shared.value()
    }

    private static let shared = StartedOnce { try await TestCertificates.make(name: "shared") }

    /// A new authority with its server and client certificates (another authority than ``shared()``'s:
    /// a client that trusts only this one refuses the shared servers' certificates).
    public static func make(name: String) async throws -> TestCertificates {
        let owner = Commands.isRoot ? "memcache" : nil
        let folder = try await Commands.makeFolder("clustersql-tls-\(name)", owner: owner)
        let authority = folder + "/ca.crt"
        let authorityKey = folder + "/ca.key"
        try await openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=ClusterSQL test authority \(name)", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", authorityKey, "-out", authority,
        ])
        func signed(_ role: String, subject: String, extensions: String) async throws -> (String, String) {
            let (certificate, key, request, extensionFile) =
                (folder + "/\(role).crt", folder + "/\(role).key", folder + "/\(role).csr", folder + "/\(role).ext")
            try extensions.write(toFile: extensionFile, atomically: true, encoding: .utf8)
            try await openssl([
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject,
                "-keyout", key, "-out", request,
            ])
            try await openssl([
                "x509", "-req", "-in", request, "-CA", authority, "-CAkey", authorityKey, "-CAcreateserial", "-days", "2",
                "-extfile", extensionFile, "-out", certificate,
            ])
            return (certificate, key)
        }
        let server = try await signed(
            "server", subject: "/CN=localhost",
            extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
        let named = try await signed(
            "named", subject: "/CN=\(namedHost)", extensions: "subjectAltName=DNS:\(namedHost)\nextendedKeyUsage=serverAuth\n")
        let client = try await signed(
            "client", subject: "/CN=clustersql-client", extensions: "extendedKeyUsage=clientAuth\n")
        if let owner { try await Commands.run("/usr/bin/chown", ["-R", "\(owner):\(owner)", folder]) }
        try await Commands.run("/bin/chmod", ["600", authorityKey, server.1, named.1, client.1])
        return TestCertificates(
            authority: authority, serverCertificate: server.0, serverKey: server.1, namedServerCertificate: named.0,
            namedServerKey: named.1, clientCertificate: client.0, clientKey: client.1)
    }

    private static func openssl(_ arguments: [String]) async throws {
        try await Commands.run("/usr/bin/openssl", arguments)
    }
}

/// How a test server speaks TLS: only TLS on its port, with ``TestCertificates``' server
/// certificate, checking client certificates against their authority when `requireClientCertificate`.
public struct ServerTLS: Sendable {
    /// The certificates the server presents and checks.
    public var certificates: TestCertificates
    /// Whether a client without a certificate signed by the authority is refused.
    public var requireClientCertificate: Bool
    /// Whether the server presents ``TestCertificates/namedServerCertificate`` (only a name, no address)
    /// instead of the one naming `localhost` and `127.0.0.1`.
    public var presentsNameOnly: Bool

    /// TLS with `certificates`, client certificates required or not.
    public init(certificates: TestCertificates, requireClientCertificate: Bool = false, presentsNameOnly: Bool = false) {
        self.certificates = certificates
        self.requireClientCertificate = requireClientCertificate
        self.presentsNameOnly = presentsNameOnly
    }

    private var certificate: String { presentsNameOnly ? certificates.namedServerCertificate : certificates.serverCertificate }
    private var key: String { presentsNameOnly ? certificates.namedServerKey : certificates.serverKey }

    /// redis-server's (and redis-sentinel's) configuration lines: TLS on `port`, no plain port,
    /// and TLS for its own connections to other nodes (replication, sentinels) too.
    func redisLines(port: Int) -> [String] {
        [
            "port 0", "tls-port \(port)", "tls-cert-file \(certificate)", "tls-key-file \(key)",
            "tls-ca-cert-file \(certificates.authority)", "tls-auth-clients \(requireClientCertificate ? "yes" : "no")",
            "tls-replication yes",
        ]
    }

    /// redis-cli's arguments to reach such a server (with the client certificate).
    var redisCLIArguments: [String] {
        ["--tls", "--cacert", certificates.authority, "--cert", certificates.clientCertificate, "--key", certificates.clientKey]
            + (presentsNameOnly ? ["--sni", TestCertificates.namedHost, "--insecure"] : [])
    }

    /// memcached's arguments: `-Z` and the `ssl_*` options (verify mode 2: a client certificate is
    /// required; 0: none is asked for).
    var memcachedArguments: [String] {
        [
            "-Z", "-o",
            "ssl_chain_cert=\(certificate),ssl_key=\(key),ssl_ca_cert=\(certificates.authority),"
                + "ssl_verify_mode=\(requireClientCertificate ? 2 : 0)",
        ]
    }
}

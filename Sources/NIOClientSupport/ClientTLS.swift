import ConnectionKit
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// TLS for a client's connections (Redis, Sentinel, memcached), on swift-nio-ssl.
///
/// The common cases take paths to PEM files:
///
/// ```swift
/// // The server's certificate signed by your own CA, and a client certificate:
/// configuration.tls = ClientTLS(trustRootsFile: "/etc/redis/ca.crt",
///                               certificateFile: "/etc/redis/client.crt", privateKeyFile: "/etc/redis/client.key")
/// ```
///
/// Anything else (ciphers, versions, keys in memory) goes through swift-nio-ssl's own
/// `TLSConfiguration` with ``init(configuration:serverName:)``.
///
/// The server's name is checked against its certificate: the configured host, or
/// ``serverName`` when the certificate names another (a host reached by IP address is
/// matched against the certificate's IP addresses). The files are read once per value (and
/// its copies), off the event loops and the cooperative pool, when the first connection is
/// made: a renewed certificate is read by a client made with a new value. A file that cannot
/// be read fails that connect with an invalid-configuration error.
public struct ClientTLS: Sendable, Hashable, CustomStringConvertible {
    /// How much of the server's certificate is checked.
    public enum Verification: String, Sendable, Hashable, CaseIterable {
        /// The chain up to a trusted root, and the server's name (the default).
        case full
        /// The chain up to a trusted root, any name: for servers reached by an address their certificate does not list.
        case certificateOnly = "certificate"
        /// Nothing: the traffic is encrypted but anyone can pose as the server. For tests only.
        case none
    }

    /// How the server's certificate is checked (for a ``init(configuration:serverName:)`` TLS, its configuration says).
    public let verification: Verification
    /// The PEM file of the roots the server's certificate must chain to; `nil`: the system's.
    public let trustRootsFile: String?
    /// The PEM file of the client certificate (and its chain), for servers that ask for one.
    public let certificateFile: String?
    /// The PEM file of the client certificate's private key (unencrypted).
    public let privateKeyFile: String?
    /// The name sent as SNI and checked against the certificate instead of the configured host; `nil`: the host.
    /// A host name, not an address (a connect with an IP address as server name fails as invalid configuration).
    public let serverName: String?
    /// swift-nio-ssl's own settings, when given with ``init(configuration:serverName:)``.
    public let configuration: TLSConfiguration?
    private let contexts = ContextCache()

    /// TLS with PEM files: `trustRootsFile` holds the certificates the server's must chain to
    /// (`nil`: the system's roots), `certificateFile` and `privateKeyFile` (unencrypted) the client
    /// certificate for servers that ask for one. TLS 1.2 at least.
    public init(
        verification: Verification = .full, trustRootsFile: String? = nil, certificateFile: String? = nil,
        privateKeyFile: String? = nil, serverName: String? = nil
    ) {
        self.verification = verification
        self.trustRootsFile = trustRootsFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.serverName = serverName
        self.configuration = nil
    }

    /// TLS with swift-nio-ssl's own `configuration` (made with `TLSConfiguration.makeClientConfiguration()`).
    public init(configuration: TLSConfiguration, serverName: String? = nil) {
        self.verification =
            switch configuration.certificateVerification {
            case .fullVerification: .full
            case .noHostnameVerification: .certificateOnly
            default: .none
            }
        self.trustRootsFile = nil
        self.certificateFile = nil
        self.privateKeyFile = nil
        self.serverName = serverName
        self.configuration = configuration
    }

    /// The verification and the files, never a key: `TLS (full verification, roots /etc/ca.crt, client certificate /etc/c.crt)`.
    public var description: String {
        var parts: [String] =
            switch verification {
            case .full: ["full verification"]
            case .certificateOnly: ["certificate verification without the name"]
            case .none: ["no verification"]
            }
        if let trustRootsFile { parts.append("roots \(trustRootsFile)") }
        if let certificateFile { parts.append("client certificate \(certificateFile)") }
        if let configuration { parts = ["custom settings, verification \(configuration.certificateVerification)"] }
        if let serverName { parts.append("server name \(serverName)") }
        return "TLS (\(parts.joined(separator: ", ")))"
    }

    /// Equal settings; a swift-nio-ssl configuration is compared with its `bestEffortEquals` (keys and callbacks by identity).
    public static func == (lhs: ClientTLS, rhs: ClientTLS) -> Bool {
        guard
            lhs.verification == rhs.verification, lhs.trustRootsFile == rhs.trustRootsFile,
            lhs.certificateFile == rhs.certificateFile, lhs.privateKeyFile == rhs.privateKeyFile, lhs.serverName == rhs.serverName
        else { return false }
        switch (lhs.configuration, rhs.configuration) {
        case (nil, nil): return true
        case (let left?, let right?): return left.bestEffortEquals(right)
        default: return false
        }
    }

    /// Hashes what `==` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(verification)
        hasher.combine(trustRootsFile)
        hasher.combine(certificateFile)
        hasher.combine(privateKeyFile)
        hasher.combine(serverName)
        configuration?.bestEffortHash(into: &hasher)
    }

    /// What a connect to `host` adds to its channel: the context (made once per value, on NIO's
    /// blocking pool, since it reads files; waited for until `deadline`) and the name to send and check.
    /// A file that cannot be used, or a server name that cannot be one, is a ``ClientTLSFailure`` of
    /// kind ``ClientTLSFailure/Kind/configuration``.
    package func setup(forHost host: String, deadline: ContinuousClock.Instant) async throws(ClientTLSFailure) -> TLSChannelSetup {
        if let serverName, let problem = Self.serverNameProblem(serverName) {
            throw ClientTLSFailure(kind: .configuration, message: "the TLS server name \(problem)")
        }
        let context: NIOSSLContext
        if let made = contexts.existing() {
            context = made
        } else {
            context = try await contexts.context(deadline: deadline) { () throws(ClientTLSFailure) in try self.makeContext() }
        }
        let name = serverName ?? (ClientTLS.isIPAddress(host) ? nil : host)
        return TLSChannelSetup(context: context, serverHostname: name)
    }

    /// Why `name` cannot be sent as SNI and checked as a server name (an IP address, empty, too long,
    /// a NUL), or `nil` when it can: the configuration reader checks with it too.
    package static func serverNameProblem(_ name: String) -> String? {
        if name.isEmpty || name.utf8.count > 255 { return "must be 1 to 255 bytes long" }
        if name.utf8.contains(0) { return "must not hold a NUL" }
        if isIPAddress(name) { return "must be a host name, not an IP address (an address is matched without one)" }
        return nil
    }

    /// Reads the files and makes the context: blocking, so only on a thread that may block.
    private func makeContext() throws(ClientTLSFailure) -> NIOSSLContext {
        var settings = configuration ?? TLSConfiguration.makeClientConfiguration()
        // A close waits for the server's close_notify at most this long (swift-nio-ssl's default is 5 s):
        // closing a pool's connections to a stalled server must not take 5 s each.
        settings.shutdownTimeout = min(settings.shutdownTimeout, .seconds(1))
        if configuration == nil {
            settings.minimumTLSVersion = .tlsv12
            settings.certificateVerification =
                switch verification {
                case .full: .fullVerification
                case .certificateOnly: .noHostnameVerification
                case .none: .none
                }
            if let trustRootsFile {
                settings.trustRoots = .certificates(try Self.load("trust roots", trustRootsFile) { try NIOSSLCertificate.fromPEMFile($0) })
            }
            if let certificateFile {
                let chain = try Self.load("client certificate", certificateFile) { try NIOSSLCertificate.fromPEMFile($0) }
                settings.certificateChain = chain.map { .certificate($0) }
            }
            if let privateKeyFile {
                let key = try Self.load("private key", privateKeyFile) { try NIOSSLPrivateKey(file: $0, format: .pem) }
                settings.privateKey = .privateKey(key)
            }
            guard (certificateFile == nil) == (privateKeyFile == nil) else {
                throw ClientTLSFailure(
                    kind: .configuration, message: "a TLS client certificate needs both its certificate and its private key file")
            }
        }
        do {
            return try NIOSSLContext(configuration: settings)
        } catch {
            throw ClientTLSFailure(kind: .configuration, message: "the TLS settings cannot be used: \(error)")
        }
    }

    /// Runs `read` on `path`; a failure names the file's role and path, never its content.
    private static func load<Value>(_ role: String, _ path: String, _ read: (String) throws -> Value) throws(ClientTLSFailure) -> Value {
        do {
            let value = try read(path)
            if let list = value as? [NIOSSLCertificate], list.isEmpty { throw NIOSSLError.failedToLoadCertificate }
            return value
        } catch {
            throw ClientTLSFailure(
                kind: .configuration,
                message: "cannot load the TLS \(role) from \(path): the file is missing, unreadable, not PEM, or an encrypted key")
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// The SSL context of a ``ClientTLS``, made once and shared by its copies: making one reads files
/// and parses certificates (milliseconds; per connection that would be a cost, and a pool warming up
/// would read the files once per connection). Connects that arrive while it is being made wait for
/// that one making. A failure is not kept: the next connect tries again.
private final class ContextCache: Sendable {
    private enum State {
        case empty
        case making(Task<Result<NIOSSLContext, ClientTLSFailure>, Never>)
        case made(NIOSSLContext)
    }
    private let state = Locked<State>(.empty)

    /// The context; made by `make` on NIO's blocking pool by the first caller, waited for until `deadline`.
    func context(
        deadline: ContinuousClock.Instant, _ make: @escaping @Sendable () throws(ClientTLSFailure) -> NIOSSLContext
    ) async throws(ClientTLSFailure) -> NIOSSLContext {
        let making: Task<Result<NIOSSLContext, ClientTLSFailure>, Never> = state.withLock { state in
            switch state {
            case .made(let context): return Task { .success(context) }
            case .making(let task): return task
            case .empty:
                let task = Task { await Self.run(make) }
                state = .making(task)
                return task
            }
        }
        let outcome = await Self.value(of: making, until: deadline)
        switch outcome {
        case .success(let context):
            state.withLock { $0 = .made(context) }
            return context
        case .failure(let failure):
            if failure.kind == .configuration { state.withLock { if case .making = $0 { $0 = .empty } } }
            throw failure
        }
    }

    /// A fast path for the usual call, once the context exists: no task is made.
    func existing() -> NIOSSLContext? {
        state.withLock { if case .made(let context) = $0 { context } else { nil } }
    }

    private static func run(
        _ make: @escaping @Sendable () throws(ClientTLSFailure) -> NIOSSLContext
    ) async -> Result<NIOSSLContext, ClientTLSFailure> {
        do {
            return try await NIOThreadPool.singleton.runIfActive { () -> Result<NIOSSLContext, ClientTLSFailure> in
                do throws(ClientTLSFailure) { return .success(try make()) } catch { return .failure(error) }
            }
        } catch {
            return .failure(ClientTLSFailure(kind: .configuration, message: "the TLS files could not be read: \(error)"))
        }
    }

    /// The task's value, or a timeout failure when `deadline` passes first (or a cancellation one when the
    /// caller is cancelled): the making goes on for later connects either way.
    private static func value(
        of task: Task<Result<NIOSSLContext, ClientTLSFailure>, Never>, until deadline: ContinuousClock.Instant
    ) async -> Result<NIOSSLContext, ClientTLSFailure> {
        await withTaskGroup(of: Result<NIOSSLContext, ClientTLSFailure>?.self) { group in
            group.addTask { await task.value }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let first { return first }
            return .failure(
                Task.isCancelled
                    ? ClientTLSFailure(kind: .cancelled, message: "the connect was cancelled while the TLS files were read")
                    : ClientTLSFailure(kind: .timeout, message: "the TLS files were not read in time"))
        }
    }
}

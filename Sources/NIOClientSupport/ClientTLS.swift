import ConnectionKit
import Foundation
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
        if configuration != nil { parts.append("custom settings") }
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

    /// What a connect to `host` adds to its channel: the context (made on first use, on NIO's
    /// blocking pool, since it reads files) and the name to send and check. A file that cannot be
    /// used is a ``ClientTLSFailure`` of kind ``ClientTLSFailure/Kind/configuration`` naming the file's role and path.
    package func setup(forHost host: String) async throws(ClientTLSFailure) -> TLSChannelSetup {
        let context = try await contexts.context { () throws(ClientTLSFailure) in try self.makeContext() }
        let name = serverName ?? (ClientTLS.isIPAddress(host) ? nil : host)
        return TLSChannelSetup(context: context, serverHostname: name)
    }

    /// Reads the files and makes the context: blocking, so only on a thread that may block.
    private func makeContext() throws(ClientTLSFailure) -> NIOSSLContext {
        var settings = configuration ?? TLSConfiguration.makeClientConfiguration()
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

/// Why TLS failed: the settings could not be used (a file unreadable or not PEM), or the
/// handshake with the server failed (untrusted or misnamed certificate, a client certificate
/// refused or missing, a server that does not speak TLS). The clients wrap it in their own error types.
package struct ClientTLSFailure: Error, Sendable {
    /// What failed.
    package enum Kind: Sendable {
        /// The settings (no connection was tried).
        case configuration
        /// The handshake with the server.
        case handshake
        /// The handshake did not finish before the connect's deadline.
        case timeout
    }
    /// What failed.
    package let kind: Kind
    /// What went wrong, in a few words.
    package let message: String

    /// The message a client's error shows, for a connect that had `connectTimeout`.
    package func message(connectTimeout: Duration) -> String {
        kind == .timeout ? "the TLS handshake did not finish within \(connectTimeout)" : message
    }
}

/// The handlers one TLS connection adds in front of its client's handler, and the wait for the handshake.
package struct TLSChannelSetup: Sendable {
    let context: NIOSSLContext
    let serverHostname: String?

    /// Adds the TLS handler and a watcher that completes `handshake` once the handshake is done
    /// (or fails it with the reason it failed); call from the channel initializer.
    package func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations, handshake: EventLoopPromise<Void>) throws {
        try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
        try pipeline.addHandler(TLSHandshakeWatcher(handshake: handshake))
    }

    /// Waits for `handshake` until `deadline`; a failure (``ClientTLSFailure/Kind/timeout`` when the deadline
    /// passes first) closes the channel.
    package func waitForHandshake(
        _ handshake: EventLoopPromise<Void>, on channel: any Channel, deadline: ContinuousClock.Instant
    ) async throws(ClientTLSFailure) {
        let remaining = ContinuousClock.now.duration(to: deadline)
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(max(.zero, remaining))) {
            handshake.fail(ClientTLSFailure(kind: .timeout, message: "the TLS handshake did not finish in time"))
        }
        defer { timer.cancel() }
        do {
            try await handshake.futureResult.get()
        } catch {
            channel.close(promise: nil)
            if let failure = error as? ClientTLSFailure { throw failure }
            throw ClientTLSFailure(kind: .handshake, message: ClientTLS.failureMessage(error) ?? "the TLS handshake failed: \(error)")
        }
    }
}

extension ClientTLS {
    /// A short message for a TLS error from swift-nio-ssl (`the TLS handshake failed: CERTIFICATE_VERIFY_FAILED`),
    /// or `nil` for an error that is not about TLS, or for a peer that closed without TLS's goodbye (a plain close).
    package static func failureMessage(_ error: any Error) -> String? {
        switch error {
        case NIOSSLError.uncleanShutdown:
            return nil
        case NIOSSLError.handshakeFailed(let reason):
            return "the TLS handshake failed: \(reasons(reason))"
        case let error as NIOSSLError:
            return "TLS failed: \(error)"
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return "the TLS handshake failed: the server's certificate does not name the host (set the TLS server name)"
        case let error as NIOSSLExtraError:
            return "TLS failed: \(error)"
        case let error as BoringSSLError:
            return "TLS failed: \(reasons(error))"
        default:
            return nil
        }
    }

    /// BoringSSL's reasons (`CERTIFICATE_VERIFY_FAILED`, `TLSV1_ALERT_UNKNOWN_CA`, `WRONG_VERSION_NUMBER`), without the codes and file names.
    private static func reasons(_ error: BoringSSLError) -> String {
        guard case .sslError(let stack) = error else { return "\(error)" }
        // Each entry reads `Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at FILE:LINE`.
        let names = stack.map { entry in
            var text = Substring("\(entry)")
            if let at = text.range(of: " at ", options: .backwards) { text = text[..<at.lowerBound] }
            return (text.split(separator: ":").last ?? text).trimmingCharacters(in: .whitespaces)
        }
        return names.isEmpty ? "\(error)" : names.joined(separator: ", ")
    }
}

/// Completes the handshake promise: at `handshakeCompleted` (and then leaves the pipeline, so
/// that reads no longer pass through it), or with the first error, or when the channel closes first.
private final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let handshake: EventLoopPromise<Void>

    init(handshake: EventLoopPromise<Void>) {
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if case TLSUserEvent.handshakeCompleted? = event as? TLSUserEvent {
            handshake.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshake.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ClientTLSFailure(kind: .handshake, message: "the server closed the connection during the TLS handshake"))
        context.fireChannelInactive()
    }
}

/// The SSL context of a ``ClientTLS``, made once and shared by its copies (making one reads
/// files and parses certificates: per connection that would cost milliseconds).
private final class ContextCache: Sendable {
    private let made = Locked<NIOSSLContext?>(nil)

    /// The context, made by `make` on NIO's blocking pool the first time.
    func context(_ make: @escaping @Sendable () throws(ClientTLSFailure) -> NIOSSLContext) async throws(ClientTLSFailure) -> NIOSSLContext {
        if let context = made.withLock({ $0 }) { return context }
        let result: Result<NIOSSLContext, ClientTLSFailure>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { () -> Result<NIOSSLContext, ClientTLSFailure> in
                do throws(ClientTLSFailure) { return .success(try make()) } catch { return .failure(error) }
            }
        } catch {
            throw ClientTLSFailure(kind: .configuration, message: "the TLS settings could not be read: \(error)")
        }
        let context = try result.get()
        return made.withLock { made in
            if made == nil { made = context }
            return made ?? context
        }
    }
}

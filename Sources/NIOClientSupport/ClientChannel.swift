import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// How the NIO clients open a socket: TCP with `TCP_NODELAY`, through TLS when the
/// configuration asks for it, the TLS handshake finished before the channel is handed
/// back. Written once for Redis and memcached.
package enum ClientChannel {
    /// Why a connect failed, for the client to turn into its own error type.
    package struct Failure: Error, Sendable {
        /// What failed.
        package enum Kind: Sendable, Equatable {
            /// No TCP connection within the connect timeout.
            case connectTimeout
            /// The TCP connection was refused or could not be made.
            case connectFailed
            /// TLS settings, the TLS handshake, or the server closing during it.
            case tls(ClientTLSFailure.Kind)
        }
        /// What failed.
        package let kind: Kind
        /// What went wrong, in a few words (never a secret: the clients' messages show it).
        package let message: String

        /// The client's own code for this failure: a TLS refusal is `tlsFailed`; unusable settings are
        /// `invalidConfiguration`; a server that closed during the handshake, or a cancelled connect, is
        /// `connectFailed` (nothing was sent); a handshake past the deadline is `connectTimeout`.
        package func code<Code>(connectTimeout: Code, connectFailed: Code, tlsFailed: Code, invalidConfiguration: Code) -> Code {
            switch kind {
            case .connectTimeout, .tls(.timeout): connectTimeout
            case .connectFailed, .tls(.closed), .tls(.cancelled): connectFailed
            case .tls(.handshake): tlsFailed
            case .tls(.configuration): invalidConfiguration
            }
        }
    }

    /// Connects to `address` (the server `host`) on `loop` within `deadline` (TCP within
    /// `connectTimeout` too, which the messages name), through `tls` when given (its handlers first, then the client's through
    /// `addHandlers`), and waits for the TLS handshake until `deadline`. The channel is closed again
    /// when the handshake fails.
    package static func connect(
        to address: SocketAddress, host: String, on loop: any EventLoop, tls settings: ClientTLS?, connectTimeout: Duration,
        deadline: ContinuousClock.Instant,
        addHandlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) async throws(Failure) -> any Channel {
        let tls: TLSChannelSetup?
        do {
            tls = try await settings?.setup(forHost: host, deadline: deadline)
        } catch {
            throw Failure(kind: .tls(error.kind), message: error.message(connectTimeout: connectTimeout))
        }
        let handshake = tls.map { _ in loop.makePromise(of: Void.self) }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(TimeAmount(max(.milliseconds(1), min(connectTimeout, ContinuousClock.now.duration(to: deadline)))))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls, let handshake { try tls.addHandlers(to: channel.pipeline.syncOperations, handshake: handshake) }
                        try addHandlers(channel.pipeline.syncOperations)
                    }
                }
                .connect(to: address).get()
        } catch ChannelError.connectTimeout {
            handshake?.fail(ChannelError.ioOnClosedChannel)
            throw Failure(kind: .connectTimeout, message: "no TCP connection within \(connectTimeout)")
        } catch {
            handshake?.fail(error)
            throw Failure(kind: .connectFailed, message: "\(error)")
        }
        if let tls, let handshake {
            do {
                try await tls.waitForHandshake(handshake, on: channel, deadline: deadline)
            } catch {
                throw Failure(kind: .tls(error.kind), message: error.message(connectTimeout: connectTimeout))
            }
        }
        return channel
    }
}

/// Why TLS failed: the settings could not be used (a file unreadable or not PEM), the handshake
/// failed (untrusted or misnamed certificate, a client certificate refused or missing, a server
/// that does not speak TLS), or the server closed the connection during it.
package struct ClientTLSFailure: Error, Sendable {
    /// What failed.
    package enum Kind: Sendable, Equatable {
        /// The settings (no connection was tried).
        case configuration
        /// The handshake: the server or we refused the other's certificate or protocol.
        case handshake
        /// The connection closed or reset before the handshake finished (a server killed or full, a
        /// proxy whose backend is down): like a refused connection, nothing was sent.
        case closed
        /// The handshake (or reading the files) did not finish before the connect's deadline.
        case timeout
        /// The connecting task was cancelled while the files were read.
        case cancelled
    }
    /// What failed.
    package let kind: Kind
    /// What went wrong, in a few words.
    package let message: String

    /// The message a client's error shows, for a connect that had `connectTimeout`.
    func message(connectTimeout: Duration) -> String {
        kind == .timeout ? "the TLS handshake did not finish within \(connectTimeout)" : message
    }
}

/// The handlers one TLS connection adds in front of its client's handler, and the wait for the handshake.
package struct TLSChannelSetup: Sendable {
    let context: NIOSSLContext
    let serverHostname: String?

    /// Adds the TLS handler and a watcher that completes `handshake` once the handshake is done
    /// (or fails it with the reason it failed); call from the channel initializer.
    func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations, handshake: EventLoopPromise<Void>) throws {
        try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
        try pipeline.addHandler(TLSHandshakeWatcher(handshake: handshake))
    }

    /// Waits for `handshake` until `deadline`; a failure (``ClientTLSFailure/Kind/timeout`` when the deadline
    /// passes first) closes the channel.
    func waitForHandshake(
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
            if let refusal = ClientTLS.failureMessage(error) { throw ClientTLSFailure(kind: .handshake, message: refusal) }
            // Not a TLS refusal: the server closed or reset the connection (or it broke) before the handshake ended.
            let detail = ClientTLS.isClosedDuringHandshake(error) ? "" : ": \(error)"
            throw ClientTLSFailure(kind: .closed, message: "the connection closed during the TLS handshake\(detail)")
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
        case _ where isClosedDuringHandshake(error):
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

    /// Whether `error` is swift-nio-ssl's report of a connection closed before the handshake finished.
    static func isClosedDuringHandshake(_ error: any Error) -> Bool {
        guard case NIOSSLError.handshakeFailed(.sslError(let stack)) = error else { return false }
        return stack == [.eofDuringHandshake]
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
        handshake.fail(ClientTLSFailure(kind: .closed, message: "the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }
}

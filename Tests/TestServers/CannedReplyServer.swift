import NIOCore
import NIOPosix

/// A TCP server on 127.0.0.1 that answers the first bytes it receives on each
/// connection with canned bytes (malformed, truncated, hostile) and then, if
/// asked, closes: a server no real Redis or memcached would be.
public final class CannedReplyServer: Sendable {
    private let channel: any Channel
    /// The port it listens on.
    public let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// What the server does with each connection.
    public enum Behaviour: Sendable {
        /// Waits for the client's first bytes, answers `reply`, then closes if `closeAfterReply`
        /// (an empty reply without closing: a server that never answers).
        case answer(reply: [UInt8], closeAfterReply: Bool)
        /// Speaks first, as a MySQL server does: sends `greeting` on accepting, then closes if `thenClose`.
        case greet(_ greeting: [UInt8], thenClose: Bool)
        /// Closes every connection as soon as it is accepted.
        case closeOnAccept
        /// Sends `chunk` again and again, as long as the client reads.
        case endless(_ chunk: [UInt8])
    }

    /// Starts a server that answers with `reply` and then closes if `closeAfterReply`.
    public static func start(reply: [UInt8], closeAfterReply: Bool) async throws -> CannedReplyServer {
        try await start(.answer(reply: reply, closeAfterReply: closeAfterReply))
    }

    /// Starts a server that treats each connection as `behaviour` says.
    public static func start(_ behaviour: Behaviour) async throws -> CannedReplyServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(CannedReply(behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return CannedReplyServer(channel: channel)
    }

    /// Stops listening.
    public func stop() async {
        try? await channel.close()
    }
}

private final class CannedReply: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let behaviour: CannedReplyServer.Behaviour
    private var answered = false

    init(_ behaviour: CannedReplyServer.Behaviour) {
        self.behaviour = behaviour
    }

    func channelActive(context: ChannelHandlerContext) {
        switch behaviour {
        case .answer: break
        case .greet(let greeting, let thenClose): send(greeting, close: thenClose, context: context)
        case .closeOnAccept: context.close(promise: nil)
        case .endless: sendMore(context: context)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .answer(let reply, let closeAfterReply) = behaviour, !answered else { return }
        answered = true
        send(reply, close: closeAfterReply, context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .endless = behaviour, context.channel.isWritable { sendMore(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func send(_ bytes: [UInt8], close: Bool, context: ChannelHandlerContext) {
        let write = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)))
        if close {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            write.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    /// Writes chunks until the socket pushes back; writability brings it here again.
    private func sendMore(context: ChannelHandlerContext) {
        guard case .endless(let chunk) = behaviour else { return }
        let buffer = context.channel.allocator.buffer(bytes: chunk)
        while context.channel.isActive, context.channel.isWritable {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }
}

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

    /// Starts a server that answers with `reply` and then closes if `closeAfterReply`.
    public static func start(reply: [UInt8], closeAfterReply: Bool) async throws -> CannedReplyServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(CannedReply(reply: reply, closeAfterReply: closeAfterReply))
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
    private let reply: [UInt8]
    private let closeAfterReply: Bool
    private var answered = false

    init(reply: [UInt8], closeAfterReply: Bool) {
        self.reply = reply
        self.closeAfterReply = closeAfterReply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        let write = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)))
        if closeAfterReply {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            write.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}

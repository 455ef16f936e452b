import ConnectionKit
import NIOCore
import NIOPosix

/// A TCP proxy on 127.0.0.1 that adds latency to a real server (the kernel here
/// has no netem). Every chunk a client sends is held for ``delay`` before it is
/// passed on, so each request/response round trip takes ``delay`` longer;
/// chunks keep their order and are delayed independently, so pipelined traffic
/// is not slowed further. Replies go back at once.
public final class DelayProxy: Sendable {
    /// The port clients connect to.
    public let port: Int
    private let settings: Locked<Duration>
    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel

    /// The latency added to each request; changeable while the proxy runs.
    public var delay: Duration {
        get { settings.withLock { $0 } }
        set { settings.withLock { $0 = newValue } }
    }

    private init(port: Int, settings: Locked<Duration>, group: MultiThreadedEventLoopGroup, listener: any Channel) {
        self.port = port
        self.settings = settings
        self.group = group
        self.listener = listener
    }

    /// Starts a proxy on a free port that forwards to `127.0.0.1:upstreamPort`.
    public static func start(upstreamPort: Int, delay: Duration) async throws -> DelayProxy {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let settings = Locked(delay)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in
                client.eventLoop.makeCompletedFuture {
                    try client.pipeline.syncOperations.addHandler(UpstreamConnector(upstreamPort: upstreamPort, delay: settings))
                }
            }
        do {
            let listener = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
            guard let port = listener.localAddress?.port else { throw TestServerError("the delay proxy has no port") }
            return DelayProxy(port: port, settings: settings, group: group, listener: listener)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops listening, closes every relayed connection and the proxy's thread.
    public func stop() async {
        try? await listener.close()
        try? await group.shutdownGracefully()
    }
}

/// Once a client's connection is up, connects it to the server and starts the
/// relays: replies from the start (the server may speak first), the client's
/// requests once the server side is connected.
private final class UpstreamConnector: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on the client channel's event loop only.
    typealias InboundIn = ByteBuffer

    private let upstreamPort: Int
    private let delay: Locked<Duration>

    init(upstreamPort: Int, delay: Locked<Duration>) {
        self.upstreamPort = upstreamPort
        self.delay = delay
    }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let delay = self.delay
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { upstream in
                upstream.eventLoop.makeCompletedFuture {
                    try upstream.pipeline.syncOperations.addHandler(DelayedRelay(partner: client, delay: { .zero }))
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                switch result {
                case .success(let upstream):
                    let toServer = DelayedRelay(partner: upstream, delay: { delay.withLock { $0 } })
                    client.pipeline.addHandler(toServer).whenComplete { _ in
                        client.setOption(.autoRead, value: true).whenComplete { _ in client.read() }
                    }
                case .failure:
                    client.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }
}

/// Passes what its channel reads to `partner` after a delay, in order; a close
/// on either side closes the other once everything before it was passed on.
private final class DelayedRelay: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every member is used on the shared event loop only.
    typealias InboundIn = ByteBuffer

    private let partner: any Channel
    private let delay: @Sendable () -> Duration
    private var queue: [(due: NIODeadline, data: ByteBuffer?)] = []  // nil data: close
    private var scheduled = false

    init(partner: any Channel, delay: @escaping @Sendable () -> Duration) {
        self.partner = partner
        self.delay = delay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        enqueue(unwrapInboundIn(data), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        enqueue(nil, context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func enqueue(_ data: ByteBuffer?, context: ChannelHandlerContext) {
        let nanoseconds = delay().inSeconds * 1e9
        queue.append((.now() + .nanoseconds(Int64(nanoseconds)), data))
        drain(loop: context.eventLoop, own: context.channel)
    }

    /// Passes on every chunk that is due, then waits for the next one.
    private func drain(loop: any EventLoop, own: any Channel) {
        guard !scheduled else { return }
        let now = NIODeadline.now()
        while let first = queue.first, first.due <= now {
            queue.removeFirst()
            guard let data = first.data else {
                partner.close(promise: nil)
                queue.removeAll()
                return
            }
            partner.writeAndFlush(data).whenFailure { _ in own.close(promise: nil) }
        }
        guard let next = queue.first else { return }
        scheduled = true
        loop.scheduleTask(deadline: next.due) {
            self.scheduled = false
            self.drain(loop: loop, own: own)
        }
    }
}

import ConnectionKit
import NIOClientSupport
import NIOCore
import NIOPosix
import Synchronization
import Tracing

/// One connection to a memcached server, safe to share between tasks: requests
/// sent concurrently are written at once (pipelining), and each caller gets its
/// own reply, in order. An answer about the item (`NS`, `EX`, `NF`) or a
/// `CLIENT_ERROR`/`SERVER_ERROR` leaves it usable; a timeout, a reset or
/// garbage fails every pending request and marks it ``isBroken``. The socket
/// lives on a SwiftNIO event loop; nothing here blocks a thread.
public final class MemcachedConnection: MemcachedCommandRunner, BreakableConnection {
    /// The server and its timeouts.
    public let configuration: MemcachedServerConfiguration
    private let channel: any Channel
    private let handler: NIOLoopBoundBox<MemcachedChannelHandler>
    private let broken: BrokenFlag
    /// The requests' spans, when the configuration traces.
    private let spans: ClientSpans?
    /// Numbers the calls, so that a cancelled task's requests can be found.
    private let callNumbers = Atomic<UInt64>(0)

    private init(
        configuration: MemcachedServerConfiguration, channel: any Channel, handler: NIOLoopBoundBox<MemcachedChannelHandler>,
        broken: BrokenFlag
    ) {
        self.configuration = configuration
        self.channel = channel
        self.handler = handler
        self.broken = broken
        spans = ClientSpans(
            configuration.tracing, system: "memcached", address: configuration.host, port: configuration.port, namespace: nil)
    }

    /// Connects within ``MemcachedServerConfiguration/connectTimeout``; a host name is
    /// resolved on NIO's blocking pool, never on an event loop or the cooperative pool.
    public static func connect(
        _ configuration: MemcachedServerConfiguration, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(MemcachedError) -> MemcachedConnection {
        let server = configuration.description
        let address: SocketAddress
        if let literal = try? SocketAddress(ipAddress: configuration.host, port: configuration.port) {
            address = literal
        } else {
            let (host, port) = (configuration.host, configuration.port)
            do {
                address = try await NIOThreadPool.singleton.runIfActive { try SocketAddress.makeAddressResolvingHost(host, port: port) }
            } catch {
                throw MemcachedError(.connectFailed, message: "cannot resolve the host: \(error)", server: server)
            }
        }
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let loop = group.next()
        let broken = BrokenFlag()
        let box = NIOLoopBoundBox.makeBoxSendingValue(
            MemcachedChannelHandler(configuration: configuration, brokenFlag: broken), eventLoop: loop)
        let limits = configuration.limits
        let channel: any Channel
        do {
            channel = try await ClientChannel.connect(
                to: address, host: configuration.host, on: loop, tls: configuration.tls, connectTimeout: configuration.connectTimeout,
                deadline: deadline
            ) { pipeline in
                try pipeline.addHandler(ByteToMessageHandler(MetaDecoder(limits: limits)))
                try pipeline.addHandler(box.value)
            }
        } catch {
            throw MemcachedError(
                error.code(
                    connectTimeout: .connectTimeout, connectFailed: .connectFailed, tlsFailed: .tlsFailed,
                    invalidConfiguration: .invalidConfiguration),
                message: error.message, server: server)
        }
        return MemcachedConnection(configuration: configuration, channel: channel, handler: box, broken: broken)
    }

    /// Sends one request and returns its reply. A cancelled task is answered at once
    /// (``MemcachedError/Code/cancelled``); a request already written keeps its place in the
    /// stream, its reply dropped when it comes, so that every later request still gets its own
    /// reply and the connection stays usable.
    package func send(_ command: MetaCommand) async throws(MemcachedError) -> MemcachedReply {
        guard let spans else { return try await unTracedSend(command) }
        return try await spans.span(command.name, errorType: { $0.code.description }) { () async throws(MemcachedError) in
            try await unTracedSend(command)
        }
    }

    @inline(__always)
    private func unTracedSend(_ command: MetaCommand) async throws(MemcachedError) -> MemcachedReply {
        let handler = self.handler
        let id = callNumbers.wrappingAdd(1, ordering: .relaxed).newValue
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: ReplyContinuation) in
                if handler.eventLoop.inEventLoop {
                    handler.value.enqueue(command, id: id, continuation)
                    if Task.isCancelled { abandon(id) }
                } else {
                    handler.eventLoop.execute { handler.value.enqueue(command, id: id, continuation) }
                    // A cancellation that ran before the request reached the loop found nothing: again, after it.
                    if Task.isCancelled { handler.eventLoop.execute { self.abandon(id) } }
                }
            }
        } onCancel: {
            handler.eventLoop.execute { self.abandon(id) }
        }
        return try result.get()
    }

    /// Answers call `id`'s requests that still wait with ``MemcachedError/Code/cancelled``; their
    /// replies are dropped when they come. On the event loop.
    private func abandon(_ id: UInt64) {
        let targets = handler.value.abandon(id)
        guard !targets.isEmpty else { return }
        let cancelled = MemcachedError(
            .cancelled, message: "the task was cancelled; the request may have run, its reply is dropped",
            server: configuration.description)
        for target in targets { target.complete(.failure(cancelled)) }
    }

    /// Sends one request about `key` (one server: the key routes nothing).
    public func send(_ command: MetaCommand, routedBy key: String) async throws(MemcachedError) -> MemcachedReply {
        try await send(command)
    }

    /// Sends `commands` in one write (one hop to the event loop) and returns each one's reply or error, in order.
    /// A cancelled task gets at once the replies that came and ``MemcachedError/Code/cancelled`` for the others.
    package func pipeline(_ commands: [MetaCommand]) async -> [Result<MemcachedReply, MemcachedError>] {
        guard !commands.isEmpty else { return [] }
        guard let spans else { return await unTracedPipeline(commands) }
        return await spans.span("PIPELINE", extra: { $0["db.operation.batch.size"] = commands.count }) { () async in
            await unTracedPipeline(commands)
        }
    }

    private func unTracedPipeline(_ commands: [MetaCommand]) async -> [Result<MemcachedReply, MemcachedError>] {
        let handler = self.handler
        let id = callNumbers.wrappingAdd(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                let enqueue: @Sendable () -> Void = {
                    let replies = BatchReplies(count: commands.count, continuation: continuation)
                    handler.value.enqueue(commands, id: id) { .batch(replies, index: $0) }
                }
                if handler.eventLoop.inEventLoop {
                    enqueue()
                    if Task.isCancelled { abandon(id) }
                } else {
                    handler.eventLoop.execute(enqueue)
                    if Task.isCancelled { handler.eventLoop.execute { self.abandon(id) } }
                }
            }
        } onCancel: {
            handler.eventLoop.execute { self.abandon(id) }
        }
    }

    /// Makes the connection flush once per event-loop turn instead of once per
    /// request, so that requests sent together by many tasks leave in one write.
    func coalesceFlushes() async {
        let handler = self.handler
        if handler.eventLoop.inEventLoop {
            handler.value.coalescesFlushes = true
        } else {
            try? await handler.eventLoop.submit { handler.value.coalescesFlushes = true }.get()
        }
    }

    /// The item size limit writes are checked against.
    public var maxItemSize: Int { configuration.maxItemSize }

    /// Whether the connection saw a connection-class failure or was closed: it must not be used again.
    public var isBroken: Bool { broken.isSet }

    /// Closes the connection; pending requests fail with ``MemcachedError/Code/connectionLost``. Safe to call repeatedly.
    public func close() async {
        broken.set()
        try? await channel.close()
    }
}

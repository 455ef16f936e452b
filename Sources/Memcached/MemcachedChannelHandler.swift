import ConnectionKit
import NIOClientSupport
import NIOCore

/// What a request receives: one reply, or the `STAT` lines of `stats`.
///
/// Opaque outside the package: the typed operations of ``MemcachedCommandRunner``
/// read it.
public struct MemcachedReply: Sendable, Hashable {
    /// What came back.
    package enum Body: Sendable, Hashable {
        /// One reply.
        case response(MetaResponse)
        /// `stats`: name → value.
        case stats([String: String])
    }

    /// What came back.
    package let body: Body

    /// One reply.
    package static func response(_ response: MetaResponse) -> MemcachedReply { MemcachedReply(body: .response(response)) }

    /// `stats`: name → value.
    package static func stats(_ stats: [String: String]) -> MemcachedReply { MemcachedReply(body: .stats(stats)) }
}

typealias ReplyContinuation = UnsafeContinuation<Result<MemcachedReply, MemcachedError>, Never>

/// Who waits for a reply: a task, or one request of a pipelined batch.
typealias MemcachedReplyTarget = ReplyTarget<MemcachedReply, MemcachedError>

/// The channel handler of a memcached connection, on its event loop only: the
/// shell around ``MemcachedConnectionStateMachine``, which decides where
/// replies go, when the connection has failed and when the timer must fire;
/// the shell writes, flushes, schedules and completes.
///
/// Requests are written as they come (pipelining); replies, in order, go to
/// the head of the queue. The first connection-class failure (read or write
/// timeout, garbage, close) fails every pending request at once and closes the
/// channel.
final class MemcachedChannelHandler: ChannelInboundHandler {
    typealias InboundIn = MetaResponse
    typealias OutboundOut = ByteBuffer

    private let brokenFlag: BrokenFlag
    // The state below is only touched on the event loop, one call at a time: the
    // runtime exclusivity checks on the busiest of it would only cost time.
    private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var state: MemcachedConnectionStateMachine<MemcachedReplyTarget>
    /// Flush once per event-loop turn instead of once per request (a shared connection:
    /// requests from many tasks that arrive together leave in one write).
    var coalescesFlushes = false
    private var flushQueued = false
    private var timer: Scheduled<Void>?

    init(configuration: MemcachedServerConfiguration, brokenFlag: BrokenFlag) {
        state = MemcachedConnectionStateMachine(
            server: configuration.description, readTimeout: TimeAmount(configuration.readTimeout),
            writeTimeout: TimeAmount(configuration.writeTimeout))
        self.brokenFlag = brokenFlag
    }

    /// Writes `command`, sent by call `id`, and queues its continuation.
    func enqueue(_ command: MetaCommand, id: UInt64, _ continuation: ReplyContinuation) {
        enqueue(CollectionOfOne(command), id: id) { _ in .caller(continuation) }
    }

    /// Writes `commands`, sent by call `id`, with one flush; `target` says where each reply goes.
    func enqueue<Commands: Collection<MetaCommand>>(_ commands: Commands, id: UInt64, _ target: (Int) -> MemcachedReplyTarget) {
        guard let context, state.isOpen else {
            let error = state.failure ?? MemcachedError(.connectionLost, message: "the connection is not open", server: state.server)
            for index in 0..<commands.count { target(index).complete(.failure(error)) }
            return
        }
        let now = NIODeadline.now()
        for (index, command) in commands.enumerated() {
            state.sent(command.name, command.reply, target(index), id: id, now: now)
            context.write(wrapOutboundOut(command.encoded), promise: nil)
        }
        if !coalescesFlushes {
            context.flush()
        } else if !flushQueued {
            flushQueued = true
            context.eventLoop.assumeIsolated().execute { self.flushQueuedWrites() }
        }
        if let deadline = state.timerToArm() { schedule(deadline) }
    }

    /// Call `id`'s caller gave up: the targets of its requests still waiting, to be answered now
    /// (their replies, when they come, are dropped); empty when all were answered already.
    func abandon(_ id: UInt64) -> [MemcachedReplyTarget] {
        state.abandon(id, discard: .discard)
    }

    private func flushQueuedWrites() {
        flushQueued = false
        guard state.isOpen, let context else { return }
        context.flush()
    }

    /// Fails everything pending and closes the channel (no-op after the first failure).
    func fail(_ error: MemcachedError) {
        guard let failure = state.fail(error) else { return }
        brokenFlag.set()
        timer?.cancel()
        timer = nil
        for target in failure.targets { target.complete(.failure(failure.error)) }
        context?.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(MemcachedError(.connectionLost, message: "the connection was closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(state.closedError())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decoding = error as? MetaDecodingError {
            fail(MemcachedError(.protocolViolation, message: decoding.message))
        } else if let tls = ClientTLS.failureMessage(error) {
            fail(MemcachedError(.tlsFailed, message: tls))
        } else {
            fail(MemcachedError(.connectionLost, message: "the connection failed: \(error)"))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if let deadline = state.writabilityChanged(isWritable: context.channel.isWritable, now: .now()) { schedule(deadline) }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state.received(unwrapInboundIn(data)) {
        case .complete(let target, let result):
            target.complete(result)
            if let deadline = state.timerToArm() { schedule(deadline) }
        case .none: break
        case .fail(let error): fail(error)
        }
    }

    // MARK: timer

    private func schedule(_ deadline: NIODeadline) {
        guard let context else { return }
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.timerFired() }
    }

    private func timerFired() {
        timer = nil
        switch state.timerFired(now: .now()) {
        case .fail(let error): fail(error)
        case .rearm(let deadline): schedule(deadline)
        case .idle: break
        }
    }
}

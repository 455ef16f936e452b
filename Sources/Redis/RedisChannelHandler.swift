import ConnectionKit
import NIOClientSupport
import NIOCore
import RESP

/// Where a reply goes: the task waiting for it.
typealias ReplyContinuation = UnsafeContinuation<Result<RESPValue, RedisError>, Never>

/// Which subscriptions a pub/sub command changes.
enum SubscriptionKind: Sendable {
    case channel, pattern, shard
}

/// How many replies a command gets before it is done.
enum ReplyExpectation: Sendable {
    /// One reply (every ordinary command).
    case one
    /// One confirmation per channel or pattern named; `nil` (an UNSUBSCRIBE of
    /// everything) means one per current subscription of that kind, at least one.
    case confirmations(SubscriptionKind, count: Int?)
}

/// Who waits for a reply: a task, or one command of an explicit pipeline.
typealias RedisReplyTarget = ReplyTarget<RESPValue, RedisError>

/// A command on its way to the event loop.
struct RedisRequest: Sendable {
    var command: RedisCommand
    var expectation: ReplyExpectation
    var continuation: ReplyContinuation
    /// Its number on the connection, by which a cancellation finds it.
    var id: UInt64
}

/// The channel handler of a Redis connection, on its event loop only: the
/// shell around ``RedisConnectionStateMachine``, which decides where replies
/// go, when the connection has failed and when the timer must fire; the shell
/// writes, flushes, schedules and completes.
///
/// Commands are written as they come (pipelining); replies, in order, go to
/// the head of the queue. Pub/sub messages and RESP3 pushes go to ``onPush``.
/// The first connection-class failure (read or write timeout, decoding error,
/// close) fails every pending command at once, closes the channel and is the
/// answer to every later command.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let brokenFlag: BrokenFlag
    /// Flush once per event-loop turn instead of once per command (automatic pipelining).
    var coalescesFlushes = false
    /// Pub/sub messages and RESP3 pushes.
    var onPush: ((RESPValue) -> Void)?
    /// Told once, when the connection fails or closes.
    var onFailure: ((RedisError) -> Void)?

    // The state below is only touched on the event loop, one call at a time: the
    // runtime exclusivity checks on the busiest of it would only cost time.
    private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var state: RedisConnectionStateMachine<RedisReplyTarget>
    @exclusivity(unchecked) private var parser: RESPParser
    @exclusivity(unchecked) private var cumulation: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var flushQueued = false
    /// Small commands waiting to be written together.
    @exclusivity(unchecked) private var staged: ByteBuffer?

    init(configuration: RedisConfiguration, brokenFlag: BrokenFlag) {
        self.brokenFlag = brokenFlag
        parser = RESPParser(limits: configuration.limits)
        state = RedisConnectionStateMachine(
            endpoint: configuration.endpoint, readTimeout: configuration.readTimeout.map(TimeAmount.init),
            writeTimeout: configuration.writeTimeout.map(TimeAmount.init))
    }

    // MARK: commands

    /// Writes one command and queues its reply.
    func enqueue(_ request: RedisRequest) {
        write(request.command, request.expectation, .caller(request.continuation), id: request.id)
        flush()
    }

    /// Writes requests handed over together, in one write and one flush.
    func enqueue(_ requests: [RedisRequest]) {
        for request in requests { write(request.command, request.expectation, .caller(request.continuation), id: request.id) }
        flush()
    }

    /// Call `id`'s caller gave up: the targets of its commands still waiting, to be answered now
    /// (their replies, when they come, are dropped); empty when all were answered already.
    func abandon(_ id: UInt64) -> [RedisReplyTarget] {
        state.abandon(id, discard: .discard)
    }

    /// Writes `commands`, sent by call `id`, with one flush; `continuation` gets all their results at once.
    func enqueue(
        _ commands: [RedisCommand], id: UInt64, continuation: UnsafeContinuation<[Result<RESPValue, RedisError>], Never>
    ) {
        let results = BatchReplies(count: commands.count, continuation: continuation)
        for (index, command) in commands.enumerated() { write(command, .one, .batch(results, index: index), id: id) }
        flush()
    }

    private func write(_ command: RedisCommand, _ expectation: ReplyExpectation, _ target: RedisReplyTarget, id: UInt64 = 0) {
        guard let context else {
            let error = state.failure ?? RedisError(.connectionClosed, message: "the connection is not open")
            target.complete(.failure(error.at(state.endpoint, command: command.name)))
            return
        }
        if let refusal = state.send(command.name, expectation, target, id: id, now: .now()) {
            target.complete(.failure(refusal))
            return
        }
        // Small commands are copied into one buffer (one write for many); big ones go out as they are.
        if command.encoded.readableBytes >= Self.copyLimit {
            writeStaged(context)
            context.write(wrapOutboundOut(command.encoded), promise: nil)
        } else if staged == nil {
            staged = command.encoded
        } else {
            staged!.writeImmutableBuffer(command.encoded)
        }
    }

    private static let copyLimit = 16 * 1024

    private func writeStaged(_ context: ChannelHandlerContext) {
        if let buffer = staged {
            staged = nil
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    private func flush() {
        guard let context, state.isOpen else { return }
        if coalescesFlushes {
            if !flushQueued {
                flushQueued = true
                context.eventLoop.assumeIsolated().execute { self.flushQueuedWrites() }
            }
        } else {
            writeStaged(context)
            context.flush()
        }
        if let deadline = state.timerToArm() { schedule(deadline) }
    }

    private func flushQueuedWrites() {
        flushQueued = false
        guard let context, state.isOpen else { return }
        writeStaged(context)
        context.flush()
    }

    /// The failure that ended the connection, if it has ended.
    var failureSeen: RedisError? { state.failure }

    /// Fails everything pending and closes the channel (no-op after the first failure).
    func fail(_ error: RedisError) {
        guard let failure = state.fail(error) else { return }
        brokenFlag.set()
        timer?.cancel()
        timer = nil
        for command in failure.commands { command.target.complete(.failure(command.error)) }
        onFailure?(failure.error)
        onFailure = nil
        context?.close(promise: nil)
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(RedisError(.connectionClosed, message: "the connection was closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(state.closedError(midReply: parser.isInsideValue || (cumulation?.readableBytes ?? 0) > 0))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tls = ClientTLS.failureMessage(error) {
            fail(RedisError(.tlsFailed, message: tls))
        } else {
            fail(RedisError(.connectionClosed, message: "the connection failed: \(error)"))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if let deadline = state.writabilityChanged(isWritable: context.channel.isWritable, now: .now()) { schedule(deadline) }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffer = cumulation {
            cumulation = nil
            buffer.writeBuffer(&incoming)
            decode(&buffer)
        } else {
            decode(&incoming)
        }
    }

    private func decode(_ buffer: inout ByteBuffer) {
        while state.isOpen {
            let value: RESPValue?
            do {
                value = try parser.parse(&buffer)
            } catch {
                fail(RedisError(.protocolViolation, message: error.description))
                return
            }
            guard let value else { break }
            switch state.received(value) {
            case .complete(let target, let result): target.complete(result)
            case .push(let value): onPush?(value)
            case .none: break
            case .fail(let error): fail(error)
            }
        }
        guard state.isOpen, buffer.readableBytes > 0 else { return }
        // While an aggregate is half-read, the parser holds slices of this buffer's storage, and the next
        // append would copy all of it, read bytes included: keep only the unread bytes (one partial element).
        if parser.isInsideValue || (buffer.readerIndex > 64 * 1024 && buffer.readerIndex > buffer.readableBytes) {
            buffer.discardReadBytes()
        }
        cumulation = buffer
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

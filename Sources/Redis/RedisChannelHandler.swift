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

/// A command written and waiting for its reply.
struct PendingCommand {
    var name: String
    var expectation: ReplyExpectation
    var deadline: NIODeadline
    var target: RedisReplyTarget
}

/// A command on its way to the event loop.
struct RedisRequest: Sendable {
    var command: RedisCommand
    var expectation: ReplyExpectation
    var continuation: ReplyContinuation
}

/// The channel handler of a Redis connection, on its event loop only.
///
/// Commands are written as they come (pipelining) and their promises queued;
/// replies, in order, go to the head of the queue. Pub/sub messages and RESP3
/// pushes go to ``onPush``. The first connection-class failure (read or write
/// timeout, decoding error, close) fails every pending command at once, closes
/// the channel and is the answer to every later command.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let brokenFlag: BrokenFlag
    private let endpoint: String
    private let readTimeout: TimeAmount?
    private let writeTimeout: TimeAmount?
    /// Flush once per event-loop turn instead of once per command (automatic pipelining).
    var coalescesFlushes = false
    /// Pub/sub messages and RESP3 pushes.
    var onPush: ((RESPValue) -> Void)?
    /// Told once, when the connection fails or closes.
    var onFailure: ((RedisError) -> Void)?

    // The state below is only touched on the event loop, one call at a time: the
    // runtime exclusivity checks on the busiest of it would only cost time.
    private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var parser: RESPParser
    @exclusivity(unchecked) private var cumulation: ByteBuffer?
    @exclusivity(unchecked) private var pending = CircularBuffer<PendingCommand>(initialCapacity: 16)
    private var failure: RedisError?
    /// `failure == nil`, kept as a flag: comparing an optional error on every command is not free.
    private var isOpen = true
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var unwritableSince: NIODeadline?
    private var flushQueued = false
    /// Small commands waiting to be written together.
    @exclusivity(unchecked) private var staged: ByteBuffer?
    private var subscriptions: [SubscriptionKind: Set<String>] = [:]
    /// Pending (un)subscribe commands: while there are none and no subscription, a reply is just a reply.
    private var subscriptionCommandsPending = 0

    init(configuration: RedisConfiguration, brokenFlag: BrokenFlag) {
        self.brokenFlag = brokenFlag
        parser = RESPParser(limits: configuration.limits)
        endpoint = configuration.endpoint
        readTimeout = configuration.readTimeout.map(TimeAmount.init)
        writeTimeout = configuration.writeTimeout.map(TimeAmount.init)
    }

    // MARK: commands

    /// Writes one command and queues its reply.
    func enqueue(_ request: RedisRequest) {
        write(request.command, request.expectation, .caller(request.continuation))
        flush()
    }

    /// Writes requests handed over together, in one write and one flush.
    func enqueue(_ requests: [RedisRequest]) {
        for request in requests { write(request.command, request.expectation, .caller(request.continuation)) }
        flush()
    }

    /// Writes `commands` with one flush; `continuation` gets all their results at once.
    func enqueue(_ commands: [RedisCommand], continuation: UnsafeContinuation<[Result<RESPValue, RedisError>], Never>) {
        let results = BatchReplies(count: commands.count, continuation: continuation)
        for (index, command) in commands.enumerated() { write(command, .one, .batch(results, index: index)) }
        flush()
    }

    private func write(_ command: RedisCommand, _ expectation: ReplyExpectation, _ target: RedisReplyTarget) {
        guard let context, isOpen else {
            let error = failure ?? RedisError(.connectionClosed, message: "the connection is not open", endpoint: endpoint)
            target.complete(.failure(error.at(endpoint, command: command.name)))
            return
        }
        let deadline = readTimeout.map { NIODeadline.now() + $0 } ?? .distantFuture
        pending.append(PendingCommand(name: command.name, expectation: expectation, deadline: deadline, target: target))
        if case .confirmations = expectation { subscriptionCommandsPending += 1 }
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
        guard let context, isOpen else { return }
        if coalescesFlushes {
            if !flushQueued {
                flushQueued = true
                context.eventLoop.assumeIsolated().execute { self.flushQueuedWrites() }
            }
        } else {
            writeStaged(context)
            context.flush()
        }
        if readTimeout != nil { armTimer() }
    }

    private func flushQueuedWrites() {
        flushQueued = false
        guard let context, isOpen else { return }
        writeStaged(context)
        context.flush()
    }

    /// The failure that ended the connection, if it has ended.
    var failureSeen: RedisError? { failure }

    /// Fails everything pending and closes the channel (no-op after the first failure).
    func fail(_ error: RedisError) {
        guard isOpen else { return }
        let error = error.at(endpoint)
        failure = error
        isOpen = false
        brokenFlag.set()
        timer?.cancel()
        timer = nil
        subscriptionCommandsPending = 0
        while let command = pending.popFirst() {
            command.target.complete(.failure(error.at(endpoint, command: command.name)))
        }
        onFailure?(error)
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
        let count = pending.count
        if parser.isInsideValue || (cumulation?.readableBytes ?? 0) > 0 {
            fail(RedisError(.protocolViolation, message: "the connection closed in the middle of a reply"))
        }
        fail(
            RedisError(
                .connectionClosed, message: count == 0 ? "the connection closed" : "the connection closed with \(count) command(s) pending")
        )
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(RedisError(.connectionClosed, message: "the connection failed: \(error)"))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
        } else if writeTimeout != nil {
            unwritableSince = .now()
            armTimer()
        }
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
        while isOpen {
            let value: RESPValue?
            do {
                value = try parser.parse(&buffer)
            } catch {
                fail(RedisError(.protocolViolation, message: error.description))
                return
            }
            guard let value else { break }
            deliver(value)
        }
        guard isOpen, buffer.readableBytes > 0 else { return }
        // While an aggregate is half-read, the parser holds slices of this buffer's storage, and the next
        // append would copy all of it, read bytes included: keep only the unread bytes (one partial element).
        if parser.isInsideValue || (buffer.readerIndex > 64 * 1024 && buffer.readerIndex > buffer.readableBytes) {
            buffer.discardReadBytes()
        }
        cumulation = buffer
    }

    // MARK: replies

    private func deliver(_ value: RESPValue) {
        if case .push(let items) = value {
            if let kind = Self.confirmationKind(items) {
                confirm(kind, items, value)
            } else {
                onPush?(value)
            }
            return
        }
        if !subscriptions.isEmpty || (subscriptionCommandsPending > 0 && headAwaitsConfirmations), case .array(let items?) = value {
            if let kind = Self.confirmationKind(items) {
                confirm(kind, items, value)
                return
            }
            if Self.isMessage(items) {
                onPush?(value)
                return
            }
        }
        guard let command = pending.popFirst() else {
            fail(RedisError(.protocolViolation, message: "a reply arrived with no command waiting for it"))
            return
        }
        if case .error(let text) = value {
            command.target.complete(.failure(.serverReply(text, endpoint: endpoint, command: command.name)))
        } else {
            command.target.complete(.success(value))
        }
    }

    private var headAwaitsConfirmations: Bool {
        if case .confirmations = pending.first?.expectation { true } else { false }
    }

    /// A (p/s)(un)subscribe confirmation: counts toward the head command's expected confirmations.
    private func confirm(_ change: (SubscriptionKind, subscribed: Bool), _ items: [RESPValue], _ value: RESPValue) {
        let (kind, subscribed) = change
        if items.count > 1, let name = items[1].string {
            if subscribed {
                subscriptions[kind, default: []].insert(name)
            } else {
                subscriptions[kind]?.remove(name)
                if subscriptions[kind]?.isEmpty == true { subscriptions[kind] = nil }
            }
        }
        guard var command = pending.first, case .confirmations(let expectedKind, let count) = command.expectation,
            expectedKind == kind
        else {
            return  // a server-initiated unsubscribe (for example a shard moving): nothing waits for it
        }
        // An unsubscribe-all learns its count on its first confirmation: one per subscription left before it.
        let remaining = (count ?? max(1, (subscriptions[kind]?.count ?? 0) + 1)) - 1
        if remaining > 0 {
            command.expectation = .confirmations(kind, count: remaining)
            pending[pending.startIndex] = command
        } else {
            pending.removeFirst()
            subscriptionCommandsPending -= 1
            command.target.complete(.success(value))
        }
    }

    private static func confirmationKind(_ items: [RESPValue]) -> (SubscriptionKind, subscribed: Bool)? {
        guard let first = items.first, case .bulkString(let bytes?) = first, bytes.readableBytes <= 12 else { return nil }
        switch String(buffer: bytes).lowercased() {
        case "subscribe": return (.channel, true)
        case "unsubscribe": return (.channel, false)
        case "psubscribe": return (.pattern, true)
        case "punsubscribe": return (.pattern, false)
        case "ssubscribe": return (.shard, true)
        case "sunsubscribe": return (.shard, false)
        default: return nil
        }
    }

    private static func isMessage(_ items: [RESPValue]) -> Bool {
        guard let first = items.first, case .bulkString(let bytes?) = first, bytes.readableBytes <= 8 else { return false }
        let kind = String(buffer: bytes).lowercased()
        return kind == "message" || kind == "pmessage" || kind == "smessage"
    }

    // MARK: timeouts

    /// Makes sure a timer fires by the earliest deadline (lazily: one timer, rescheduled only when it fires early).
    private func armTimer() {
        guard let context, isOpen else { return }
        var next: NIODeadline?
        if readTimeout != nil, let head = pending.first { next = head.deadline }
        if let writeTimeout, let since = unwritableSince { next = min(next ?? .distantFuture, since + writeTimeout) }
        guard let next else { return }
        if let timerDeadline, timerDeadline <= next { return }
        timer?.cancel()
        timerDeadline = next
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) { self.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerDeadline = nil
        let now = NIODeadline.now()
        if let readTimeout, let head = pending.first, head.deadline <= now {
            fail(
                RedisError(
                    .readTimeout, message: "no reply within \(Self.describe(readTimeout)) (\(pending.count) command(s) pending)",
                    command: head.name))
            return
        }
        if let writeTimeout, let since = unwritableSince, since + writeTimeout <= now {
            fail(RedisError(.writeTimeout, message: "the socket accepted nothing for \(Self.describe(writeTimeout))"))
            return
        }
        armTimer()
    }

    static func describe(_ amount: TimeAmount) -> String {
        let milliseconds = amount.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}

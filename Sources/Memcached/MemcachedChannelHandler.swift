import ConnectionKit
import NIOClientSupport
import NIOCore

/// What a request receives: one reply, or the `STAT` lines of `stats`.
public enum MemcachedReply: Sendable, Hashable {
    /// One reply.
    case response(MetaResponse)
    /// `stats`: name → value.
    case stats([String: String])
}

typealias ReplyContinuation = UnsafeContinuation<Result<MemcachedReply, MemcachedError>, Never>

/// Who waits for a reply: a task, or one request of a pipelined batch.
typealias MemcachedReplyTarget = ReplyTarget<MemcachedReply, MemcachedError>

/// Requests are written as they come (pipelining) and their continuations
/// queued; replies, in order, go to the head of the queue. The first
/// connection-class failure (read or write timeout, garbage, close) fails
/// every pending request at once and closes the channel.
final class MemcachedChannelHandler: ChannelInboundHandler {
    typealias InboundIn = MetaResponse
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var name: String
        var reply: MetaCommand.Reply
        var deadline: NIODeadline
        var target: MemcachedReplyTarget
        var stats: [String: String] = [:]
    }

    private let server: String
    private let readTimeout: TimeAmount
    private let writeTimeout: TimeAmount
    private let brokenFlag: BrokenFlag
    // The state below is only touched on the event loop, one call at a time: the
    // runtime exclusivity checks on the busiest of it would only cost time.
    private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var pending = CircularBuffer<Pending>(initialCapacity: 8)
    private var failure: MemcachedError?
    /// Flush once per event-loop turn instead of once per request (a shared connection:
    /// requests from many tasks that arrive together leave in one write).
    var coalescesFlushes = false
    private var flushQueued = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var unwritableSince: NIODeadline?

    init(configuration: MemcachedServerConfiguration, brokenFlag: BrokenFlag) {
        server = configuration.description
        readTimeout = TimeAmount(configuration.readTimeout)
        writeTimeout = TimeAmount(configuration.writeTimeout)
        self.brokenFlag = brokenFlag
    }

    /// Writes `command` and queues its continuation.
    func enqueue(_ command: MetaCommand, _ continuation: ReplyContinuation) {
        enqueue(CollectionOfOne(command)) { _ in .caller(continuation) }
    }

    /// Writes `commands` with one flush; `target` says where each reply goes.
    func enqueue<Commands: Collection<MetaCommand>>(_ commands: Commands, _ target: (Int) -> MemcachedReplyTarget) {
        guard failure == nil, let context else {
            let error = failure ?? MemcachedError(.connectionLost, message: "the connection is not open", server: server)
            for index in 0..<commands.count { target(index).complete(.failure(error)) }
            return
        }
        let deadline = NIODeadline.now() + readTimeout
        for (index, command) in commands.enumerated() {
            pending.append(Pending(name: command.name, reply: command.reply, deadline: deadline, target: target(index)))
            context.write(wrapOutboundOut(command.encoded), promise: nil)
        }
        if !coalescesFlushes {
            context.flush()
        } else if !flushQueued {
            flushQueued = true
            context.eventLoop.assumeIsolated().execute { self.flushQueuedWrites() }
        }
        armTimer()
    }

    private func flushQueuedWrites() {
        flushQueued = false
        guard failure == nil, let context else { return }
        context.flush()
    }

    /// Fails everything pending and closes the channel (no-op after the first failure).
    func fail(_ error: MemcachedError) {
        guard failure == nil else { return }
        let error = error.at(server)
        failure = error
        brokenFlag.set()
        timer?.cancel()
        timer = nil
        while let request = pending.popFirst() { request.target.complete(.failure(error)) }
        context?.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(MemcachedError(.connectionLost, message: "the connection was closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        let count = pending.count
        fail(
            MemcachedError(
                .connectionLost, message: count == 0 ? "the connection closed" : "the connection closed with \(count) request(s) pending"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decoding = error as? MetaDecodingError {
            fail(MemcachedError(.protocolViolation, message: decoding.message))
        } else {
            fail(MemcachedError(.connectionLost, message: "the connection failed: \(error)"))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
        } else {
            unwritableSince = .now()
            armTimer()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let response = unwrapInboundIn(data)
        guard var head = pending.first else {
            fail(MemcachedError(.protocolViolation, message: "a reply that no request asked for"))
            return
        }
        switch (head.reply, response) {
        case (.stats, .stat(let name, let value)):
            head.stats[name] = value
            pending[pending.startIndex] = head
            return
        case (.stats, .end):
            pending.removeFirst()
            head.target.complete(.success(.stats(head.stats)))
        case (.stats, .error(let kind, let text)), (.one, .error(let kind, let text)):
            pending.removeFirst()
            let code: MemcachedError.Code = kind == .server ? .server : .client
            head.target.complete(.failure(MemcachedError(code, message: text.isEmpty ? kind.rawValue : text, server: server)))
        case (.stats, _):
            fail(MemcachedError(.protocolViolation, message: "an unexpected reply in the middle of stats"))
        case (.one, .stat), (.one, .end):
            fail(MemcachedError(.protocolViolation, message: "a STAT or END line no request asked for"))
        case (.one, _):
            pending.removeFirst()
            head.target.complete(.success(.response(response)))
        }
        armTimer()
    }

    // MARK: timeouts

    /// One timer, rescheduled only when it would fire later than the earliest deadline.
    private func armTimer() {
        guard let context, failure == nil else { return }
        var next = pending.first?.deadline
        if let since = unwritableSince { next = min(next ?? .distantFuture, since + writeTimeout) }
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
        if let head = pending.first, head.deadline <= now {
            fail(
                MemcachedError(
                    .readTimeout,
                    message:
                        "no reply to \(head.name) within \(readTimeout.nanoseconds / 1_000_000) ms (\(pending.count) request(s) pending)"))
            return
        }
        if let since = unwritableSince, since + writeTimeout <= now {
            fail(MemcachedError(.writeTimeout, message: "the socket accepted nothing for \(writeTimeout.nanoseconds / 1_000_000) ms"))
            return
        }
        armTimer()
    }
}

import ConnectionKit
import NIOCore

/// What a request receives: one reply, or the `STAT` lines of `stats`.
public enum MemcachedReply: Sendable, Hashable {
    /// One reply.
    case response(MetaResponse)
    /// `stats`: name → value.
    case stats([String: String])
}

typealias ReplyContinuation = CheckedContinuation<Result<MemcachedReply, MemcachedError>, Never>

/// The replies of a pipelined batch, handed over all at once when the last one arrives (loop-confined).
final class BatchReplies {
    private var results: [Result<MemcachedReply, MemcachedError>?]
    private var remaining: Int
    private let continuation: CheckedContinuation<[Result<MemcachedReply, MemcachedError>], Never>

    init(count: Int, continuation: CheckedContinuation<[Result<MemcachedReply, MemcachedError>], Never>) {
        results = Array(repeating: nil, count: count)
        remaining = count
        self.continuation = continuation
    }

    func complete(_ index: Int, _ result: Result<MemcachedReply, MemcachedError>) {
        results[index] = result
        remaining -= 1
        if remaining == 0 { continuation.resume(returning: results.map { $0! }) }
    }
}

/// Where a reply goes: one caller, or its place in a batch.
enum ReplyTarget {
    case single(ReplyContinuation)
    case batch(BatchReplies, Int)

    func complete(_ result: Result<MemcachedReply, MemcachedError>) {
        switch self {
        case .single(let continuation): continuation.resume(returning: result)
        case .batch(let replies, let index): replies.complete(index, result)
        }
    }
}

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
        var target: ReplyTarget
        var stats: [String: String] = [:]
    }

    private let server: String
    private let readTimeout: TimeAmount
    private let writeTimeout: TimeAmount
    private let brokenFlag: BrokenFlag
    private var context: ChannelHandlerContext?
    private var pending = CircularBuffer<Pending>(initialCapacity: 8)
    private var failure: MemcachedError?
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
        enqueue([command]) { _ in .single(continuation) }
    }

    /// Writes `commands` with one flush; `target` says where each reply goes.
    func enqueue(_ commands: [MetaCommand], _ target: (Int) -> ReplyTarget) {
        guard failure == nil, let context else {
            let error = failure ?? MemcachedError(.connectionLost, message: "the connection is not open", server: server)
            for index in commands.indices { target(index).complete(.failure(error)) }
            return
        }
        let deadline = NIODeadline.now() + readTimeout
        for (index, command) in commands.enumerated() {
            pending.append(Pending(name: command.name, reply: command.reply, deadline: deadline, target: target(index)))
            context.write(wrapOutboundOut(command.encoded), promise: nil)
        }
        context.flush()
        armTimer()
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
        fail(MemcachedError(.connectionLost, message: count == 0 ? "the connection closed" : "the connection closed with \(count) request(s) pending"))
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
            fail(MemcachedError(.readTimeout, message: "no reply to \(head.name) within \(readTimeout.nanoseconds / 1_000_000) ms (\(pending.count) request(s) pending)"))
            return
        }
        if let since = unwritableSince, since + writeTimeout <= now {
            fail(MemcachedError(.writeTimeout, message: "the socket accepted nothing for \(writeTimeout.nanoseconds / 1_000_000) ms"))
            return
        }
        armTimer()
    }
}

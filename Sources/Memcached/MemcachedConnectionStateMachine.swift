import ConnectionKit
import NIOClientSupport
import NIOCore

/// The state of one memcached connection, without the channel: which requests
/// wait for replies (in order), the `STAT` lines gathered for a `stats`, and
/// the failure that ends it. ``MemcachedChannelHandler`` is the shell that
/// feeds it channel events and carries out its answers; tests drive it with
/// plain values.
///
/// Replies go to the head request, in order; a `stats` request gathers `STAT`
/// lines up to `END`. A reply that fits no request (a `STAT` without a `stats`,
/// anything but `STAT`/`END`/an error inside one, a reply with nothing waiting)
/// is garbage: it fails the connection. The first connection-class failure ends
/// the connection, failing every waiting request and every later one (see
/// ``PipelineStateMachine`` for the phases and the timer).
struct MemcachedConnectionStateMachine<Target> {
    /// A request written and waiting for its reply.
    struct Request: AbandonableRequest {
        var name: String
        var reply: MetaCommand.Reply
        var target: Target
        /// The number of the call that sent it (every request of a batch shares one), by which a
        /// cancellation finds it; 0 for none.
        var callID: UInt64 = 0
        /// The `STAT` lines of a `stats` read so far.
        var stats: [String: String] = [:]
    }

    /// What to do with a reply read from the socket.
    enum ReplyAction {
        /// Hand this result to whoever waits for it.
        case complete(Target, Result<MemcachedReply, MemcachedError>)
        /// One `STAT` line of a `stats` still being read: nothing yet.
        case none
        /// A reply no request asked for: fail the connection with this error.
        case fail(MemcachedError)
    }

    /// What the timer found when it fired.
    enum TimerAction {
        /// A deadline passed: fail the connection with this error.
        case fail(MemcachedError)
        /// Schedule the timer again for this moment.
        case rearm(NIODeadline)
        /// No timer is needed.
        case idle
    }

    private var pipeline: PipelineStateMachine<Request, MemcachedError>
    let server: String
    private let readTimeout: TimeAmount
    private let writeTimeout: TimeAmount

    init(server: String, readTimeout: TimeAmount, writeTimeout: TimeAmount) {
        self.server = server
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        pipeline = PipelineStateMachine(readTimeout: readTimeout, writeTimeout: writeTimeout, initialCapacity: 8)
    }

    /// Whether requests may still be written.
    var isOpen: Bool { pipeline.isOpen }

    /// The failure that ended the connection, if it has ended.
    var failure: MemcachedError? { pipeline.failure }

    /// How many requests wait for a reply.
    var pendingCount: Int { pipeline.pendingCount }

    // MARK: events

    /// A request written at `now` by call `id` (the caller checked ``isOpen``).
    mutating func sent(_ name: String, _ reply: MetaCommand.Reply, _ target: Target, id: UInt64 = 0, now: NIODeadline) {
        pipeline.enqueue(Request(name: name, reply: reply, target: target, callID: id), now: now)
    }

    /// The caller of call `id` gave up: the targets of its requests still waiting, to be answered
    /// now, are replaced by `discard` (see `PipelineStateMachine.abandon(call:discard:)`).
    mutating func abandon(_ id: UInt64, discard: Target) -> [Target] {
        pipeline.abandon(call: id, discard: discard)
    }

    /// The moment to (re)arm the timer for after a write or a reply, if it must be.
    mutating func timerToArm() -> NIODeadline? { pipeline.timerToArm() }

    /// A reply read from the socket.
    mutating func received(_ response: MetaResponse) -> ReplyAction {
        guard var head = pipeline.head else {
            return .fail(MemcachedError(.protocolViolation, message: "a reply that no request asked for"))
        }
        switch (head.reply, response) {
        case (.stats, .stat(let name, let value)):
            head.stats[name] = value
            pipeline.updateHead(head)
            return .none
        case (.stats, .end):
            _ = pipeline.popHead()
            return .complete(head.target, .success(.stats(head.stats)))
        case (.stats, .error(let kind, let text)), (.one, .error(let kind, let text)):
            _ = pipeline.popHead()
            let code: MemcachedError.Code = kind == .server ? .server : .client
            return .complete(head.target, .failure(MemcachedError(code, message: text.isEmpty ? kind.rawValue : text, server: server)))
        case (.stats, _):
            return .fail(MemcachedError(.protocolViolation, message: "an unexpected reply in the middle of stats"))
        case (.one, .stat), (.one, .end):
            return .fail(MemcachedError(.protocolViolation, message: "a STAT or END line no request asked for"))
        case (.one, _):
            _ = pipeline.popHead()
            return .complete(head.target, .success(.response(response)))
        }
    }

    /// What ending the connection leaves to do: fail every waiting request's target with ``error``, close the channel.
    struct Failure {
        var error: MemcachedError
        var targets: [Target]
    }

    /// Ends the connection with `error`: the targets to fail with the returned error, or `nil` when it had
    /// already ended (only the first failure counts).
    mutating func fail(_ error: MemcachedError) -> Failure? {
        let error = error.at(server)
        guard let queued = pipeline.fail(error) else { return nil }
        return Failure(error: error, targets: queued.map(\.entry.target))
    }

    /// The peer closed the connection.
    func closedError() -> MemcachedError {
        let count = pipeline.pendingCount
        return MemcachedError(
            .connectionLost, message: count == 0 ? "the connection closed" : "the connection closed with \(count) request(s) pending")
    }

    /// The socket became writable again, or stopped being so: a moment to arm the timer for, if it must be.
    mutating func writabilityChanged(isWritable: Bool, now: NIODeadline) -> NIODeadline? {
        pipeline.writabilityChanged(isWritable: isWritable, now: now)
    }

    /// The timer fired at `now`.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        switch pipeline.timerFired(now: now) {
        case .readTimeout(let head, let count):
            return .fail(
                MemcachedError(
                    .readTimeout,
                    message:
                        "no reply to \(head.name) within \(formatted(.nanoseconds(readTimeout.nanoseconds))) (\(count) request(s) pending)"
                ))
        case .writeTimeout:
            return .fail(
                MemcachedError(
                    .writeTimeout, message: "the socket accepted nothing for \(formatted(.nanoseconds(writeTimeout.nanoseconds)))"))
        case .rearm(let deadline):
            return .rearm(deadline)
        case .idle:
            return .idle
        }
    }
}

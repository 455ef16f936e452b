import ConnectionKit
import NIOClientSupport
import NIOCore
import RESP

/// The state of one Redis connection, without the channel: which commands wait
/// for replies (in order), which subscriptions are open, which reply is a
/// pub/sub message, and the failure that ends it. ``RedisChannelHandler`` is
/// the shell that feeds it channel events and carries out its answers; tests
/// drive it with plain values.
///
/// Replies go to the head command, in order. While the connection subscribes
/// (or an (un)subscribe is pending), an array that is a pub/sub message goes to
/// the push handler and a confirmation counts toward the head (un)subscribe's
/// expected confirmations; RESP3 pushes always go there. The first
/// connection-class failure (timeout, garbage, close, a reply nobody asked for)
/// ends the connection: every waiting command fails with it, and so does every
/// later one (see ``PipelineStateMachine`` for the phases and the timer).
struct RedisConnectionStateMachine<Target> {
    /// A command written and waiting for its reply.
    struct Command: AbandonableRequest {
        var name: String
        var expectation: ReplyExpectation
        var target: Target
        /// The number of the call that sent it on its connection (a batch's commands share one), for a cancellation.
        var callID: UInt64 = 0
    }

    /// What to do with a value read from the socket.
    enum ReplyAction {
        /// Hand this result to whoever waits for it.
        case complete(Target, Result<RESPValue, RedisError>)
        /// A pub/sub message or RESP3 push: to the push handler.
        case push(RESPValue)
        /// A confirmation that answers nobody yet (or a server-initiated unsubscribe): nothing.
        case none
        /// The server said something no command asked for: fail the connection with this error.
        case fail(RedisError)
    }

    /// What the timer found when it fired.
    enum TimerAction {
        /// A deadline passed: fail the connection with this error.
        case fail(RedisError)
        /// Schedule the timer again for this moment.
        case rearm(NIODeadline)
        /// No timer is needed.
        case idle
    }

    /// What ending the connection leaves to do: fail every waiting command with its error, tell the observer
    /// ``error``, close the channel.
    struct Failure {
        var error: RedisError
        var commands: [(target: Target, error: RedisError)]
    }

    private(set) var pipeline: PipelineStateMachine<Command, RedisError>
    let endpoint: String
    private let readTimeout: TimeAmount?
    private let writeTimeout: TimeAmount?
    private var subscriptions: [SubscriptionKind: Set<String>] = [:]
    /// Pending (un)subscribe commands: while there are none and no subscription, a reply is just a reply.
    private var subscriptionCommandsPending = 0

    init(endpoint: String, readTimeout: TimeAmount?, writeTimeout: TimeAmount?) {
        self.endpoint = endpoint
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        pipeline = PipelineStateMachine(readTimeout: readTimeout, writeTimeout: writeTimeout)
    }

    /// Whether commands may still be written.
    var isOpen: Bool { pipeline.isOpen }

    /// The failure that ended the connection, if it has ended.
    var failure: RedisError? { pipeline.failure }

    /// How many commands wait for a reply.
    var pendingCount: Int { pipeline.pendingCount }

    /// The names of the open subscriptions of `kind`.
    func subscribed(_ kind: SubscriptionKind) -> Set<String> { subscriptions[kind] ?? [] }

    // MARK: events

    /// A command is about to be written at `now` (read only when there is a read timeout): `nil` when it may go (it is queued), else the error that
    /// answers it at once (the connection has ended).
    mutating func send(
        _ name: String, _ expectation: ReplyExpectation, _ target: Target, id: UInt64 = 0, now: @autoclosure () -> NIODeadline
    ) -> RedisError? {
        guard pipeline.isOpen else {
            let error = pipeline.failure ?? RedisError(.connectionClosed, message: "the connection is not open", endpoint: endpoint)
            return error.at(endpoint, command: name)
        }
        pipeline.enqueue(Command(name: name, expectation: expectation, target: target, callID: id), now: now())
        if case .confirmations = expectation { subscriptionCommandsPending += 1 }
        return nil
    }

    /// The moment to (re)arm the timer for after a write, if it must be.
    mutating func timerToArm() -> NIODeadline? { pipeline.timerToArm() }

    /// A value read from the socket.
    mutating func received(_ value: RESPValue) -> ReplyAction {
        if case .push(let items) = value {
            if let change = Self.confirmationKind(items) { return confirm(change, items, value) }
            return .push(value)
        }
        if !subscriptions.isEmpty || (subscriptionCommandsPending > 0 && headAwaitsConfirmations), case .array(let items?) = value {
            if let change = Self.confirmationKind(items) { return confirm(change, items, value) }
            if Self.isMessage(items) { return .push(value) }
        }
        guard let command = pipeline.popHead() else {
            return .fail(RedisError(.protocolViolation, message: "a reply arrived with no command waiting for it"))
        }
        if case .error(let text) = value {
            return .complete(command.target, .failure(.serverReply(text, endpoint: endpoint, command: command.name)))
        }
        return .complete(command.target, .success(value))
    }

    /// The caller of call `id` gave up: the targets of its commands still waiting, to be answered
    /// now, are replaced by `discard` (see `PipelineStateMachine.abandon(call:discard:)`).
    mutating func abandon(_ id: UInt64, discard: Target) -> [Target] {
        pipeline.abandon(call: id, discard: discard)
    }

    /// Ends the connection with `error` (the first failure only: later ones answer `nil`).
    mutating func fail(_ error: RedisError) -> Failure? {
        let error = error.at(endpoint)
        guard let queued = pipeline.fail(error) else { return nil }
        subscriptionCommandsPending = 0
        return Failure(error: error, commands: queued.map { ($0.entry.target, error.at(endpoint, command: $0.entry.name)) })
    }

    /// The peer closed the connection; `midReply`: inside a reply read in part (a truncation).
    func closedError(midReply: Bool) -> RedisError {
        if midReply { return RedisError(.protocolViolation, message: "the connection closed in the middle of a reply") }
        let count = pipeline.pendingCount
        return RedisError(
            .connectionClosed, message: count == 0 ? "the connection closed" : "the connection closed with \(count) command(s) pending")
    }

    /// The socket became writable again, or stopped being so: a moment to arm the timer for, if it must be.
    mutating func writabilityChanged(isWritable: Bool, now: NIODeadline) -> NIODeadline? {
        pipeline.writabilityChanged(isWritable: isWritable, now: now)
    }

    /// The timer fired at `now`.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        switch pipeline.timerFired(now: now) {
        case .readTimeout(let head, let count):
            let waited = readTimeout.map { formatted(.nanoseconds($0.nanoseconds)) } ?? "the read timeout"
            return .fail(RedisError(.readTimeout, message: "no reply within \(waited) (\(count) command(s) pending)", command: head.name))
        case .writeTimeout:
            let waited = writeTimeout.map { formatted(.nanoseconds($0.nanoseconds)) } ?? "the write timeout"
            return .fail(RedisError(.writeTimeout, message: "the socket accepted nothing for \(waited)"))
        case .rearm(let deadline):
            return .rearm(deadline)
        case .idle:
            return .idle
        }
    }

    // MARK: subscriptions

    private var headAwaitsConfirmations: Bool {
        if case .confirmations = pipeline.head?.expectation { true } else { false }
    }

    /// A (p/s)(un)subscribe confirmation: counts toward the head command's expected confirmations.
    private mutating func confirm(_ change: (SubscriptionKind, subscribed: Bool), _ items: [RESPValue], _ value: RESPValue) -> ReplyAction {
        let (kind, subscribed) = change
        if items.count > 1, let name = items[1].string {
            if subscribed {
                subscriptions[kind, default: []].insert(name)
            } else {
                subscriptions[kind]?.remove(name)
                if subscriptions[kind]?.isEmpty == true { subscriptions[kind] = nil }
            }
        }
        guard var command = pipeline.head, case .confirmations(let expectedKind, let count) = command.expectation,
            expectedKind == kind
        else {
            return .none  // a server-initiated unsubscribe (for example a shard moving): nothing waits for it
        }
        // An unsubscribe-all learns its count on its first confirmation: one per subscription left before it.
        let remaining = (count ?? max(1, (subscriptions[kind]?.count ?? 0) + 1)) - 1
        if remaining > 0 {
            command.expectation = .confirmations(kind, count: remaining)
            pipeline.updateHead(command)
            return .none
        }
        _ = pipeline.popHead()
        subscriptionCommandsPending -= 1
        return .complete(command.target, .success(value))
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
}

import Logging
import NIOCore
import NIOPosix
import RESP

/// One message received on a subscription.
public struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel it was published to.
    public var channel: String
    /// The pattern that matched it, for a `PSUBSCRIBE`; `nil` for a plain subscription.
    public var pattern: String?
    /// The message, byte for byte.
    public var payload: ByteBuffer

    /// Creates a message.
    package init(channel: String, pattern: String? = nil, payload: ByteBuffer) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }

    /// The payload as UTF-8 text.
    public var text: String { String(buffer: payload) }

    /// Reads a `message`, `pmessage` or `smessage` (RESP2 array or RESP3 push); `nil` for anything else.
    init?(_ value: RESPValue) {
        guard let items = value.elements, let kind = items.first?.string?.lowercased() else { return nil }
        switch (kind, items.count) {
        case ("message", 3), ("smessage", 3):
            guard let channel = items[1].string, case .bulkString(let payload?) = items[2] else { return nil }
            self.init(channel: channel, payload: payload)
        case ("pmessage", 4):
            guard let pattern = items[1].string, let channel = items[2].string, case .bulkString(let payload?) = items[3] else {
                return nil
            }
            self.init(channel: channel, pattern: pattern, payload: payload)
        default:
            return nil
        }
    }
}

/// A connection in subscriber mode: `SUBSCRIBE`, `PSUBSCRIBE` and their
/// `UNSUBSCRIBE`s, with every message delivered through ``messages``.
///
/// Each subscription call returns once the server has confirmed every channel
/// or pattern in it. When the connection fails, ``messages`` ends by throwing
/// the ``RedisError``; after ``close()`` it just ends. Messages are buffered
/// without bound until read: read them promptly (Redis itself disconnects a
/// subscriber whose output buffer grows past `client-output-buffer-limit pubsub`).
public final class RedisSubscriber: Sendable {
    /// Every message received, in the order the server sent them. One reader at a time.
    public let messages: AsyncThrowingStream<RedisPubSubMessage, any Error>
    private let connection: RedisConnection
    private let sink: AsyncThrowingStream<RedisPubSubMessage, any Error>.Continuation

    private init(connection: RedisConnection) {
        self.connection = connection
        (messages, sink) = AsyncThrowingStream.makeStream(of: RedisPubSubMessage.self)
    }

    /// Connects (with the same handshake as ``RedisConnection/connect(_:on:logger:)``) for subscribing.
    public static func connect(
        _ configuration: RedisConfiguration,
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "clustersql.redis")
    ) async throws(RedisError) -> RedisSubscriber {
        let connection = try await RedisConnection.connect(configuration, on: group, logger: logger)
        let subscriber = RedisSubscriber(connection: connection)
        let sink = subscriber.sink
        let handler = connection.handler
        let failedAlready: RedisError?? = try? await handler.eventLoop.submit { () -> RedisError? in
            handler.value.onPush = { value in
                if let message = RedisPubSubMessage(value) { sink.yield(message) }
            }
            handler.value.onFailure = { sink.finish(throwing: $0) }
            return handler.value.failureSeen
        }.get()
        switch failedAlready {
        case .none: sink.finish(throwing: RedisError(.connectionClosed, message: "the event loop is gone"))
        case .some(.some(let error)): sink.finish(throwing: error)  // it failed before the hooks were in place
        case .some(.none): break
        }
        return subscriber
    }

    /// `SUBSCRIBE channels...`; returns when every channel is confirmed.
    public func subscribe(_ channels: String...) async throws(RedisError) {
        try await subscribe(channels)
    }

    /// `SUBSCRIBE` to every channel of `channels`; returns when every channel is confirmed.
    public func subscribe(_ channels: [String]) async throws(RedisError) {
        try await change("SUBSCRIBE", channels, .channel)
    }

    /// `PSUBSCRIBE patterns...` (glob patterns such as `news.*`); returns when every pattern is confirmed.
    public func psubscribe(_ patterns: String...) async throws(RedisError) {
        try await change("PSUBSCRIBE", patterns, .pattern)
    }

    /// `UNSUBSCRIBE channels...`; none: from every channel.
    public func unsubscribe(_ channels: String...) async throws(RedisError) {
        try await change("UNSUBSCRIBE", channels, .channel)
    }

    /// `PUNSUBSCRIBE patterns...`; none: from every pattern.
    public func punsubscribe(_ patterns: String...) async throws(RedisError) {
        try await change("PUNSUBSCRIBE", patterns, .pattern)
    }

    /// `PING`, allowed in subscriber mode: proves the connection is alive.
    public func ping() async throws(RedisError) {
        _ = try await connection.send(RedisCommand("PING"))
    }

    /// `PING` with a bound: whether the server answered within `timeout`. No answer
    /// closes the connection, and ``messages`` ends with the error.
    public func ping(within timeout: Duration) async -> Bool {
        if case .success = await connection.send(RedisCommand("PING"), within: timeout) { true } else { false }
    }

    /// Whether the connection failed or was closed.
    public var isBroken: Bool { connection.isBroken }

    /// Ends ``messages`` (without an error) and closes the connection. Safe to call repeatedly.
    public func close() async {
        sink.finish()
        await connection.close()
    }

    private func change(_ command: String, _ names: [String], _ kind: SubscriptionKind) async throws(RedisError) {
        let expectation = ReplyExpectation.confirmations(kind, count: names.isEmpty ? nil : names.count)
        _ = try await connection.send(RedisCommand(command, arguments: names), expecting: expectation).get()
    }
}

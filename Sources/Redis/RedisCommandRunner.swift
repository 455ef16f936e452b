import ConnectionKit
import NIOCore
import RESP

/// Anything that runs Redis commands: a ``RedisConnection``, a ``RedisPool``.
/// The typed helpers below are written once, here, for all of them.
public protocol RedisCommandRunner: Sendable {
    /// Sends one command and returns its reply; an error reply is thrown as a
    /// ``RedisError`` with code ``RedisError/Code/server``.
    func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue
}

extension RedisCommandRunner {
    /// Sends `name` with `arguments`: `send("HSET", "h", "field", value)`.
    @discardableResult
    @inlinable
    public func send<each Argument: RedisArgument>(_ name: String, _ arguments: repeat each Argument) async throws(RedisError) -> RESPValue
    {
        try await send(RedisCommand(name, repeat each arguments))
    }

    /// `PING`; throws unless the server answers `PONG`.
    public func ping() async throws(RedisError) {
        let reply = try await send(RedisCommand("PING"))
        guard reply.string?.uppercased() == "PONG" else { throw unexpected(reply, "PING") }
    }

    /// `GET key`: the value's bytes, or `nil` when the key does not exist.
    public func get(_ key: some RedisArgument) async throws(RedisError) -> ByteBuffer? {
        let reply = try await send(RedisCommand("GET", key))
        switch reply {
        case .bulkString(let bytes): return bytes
        case .null: return nil
        default: throw unexpected(reply, "GET")
        }
    }

    /// `GET key` as UTF-8 text.
    public func getString(_ key: some RedisArgument) async throws(RedisError) -> String? {
        try await get(key).map { String(buffer: $0) }
    }

    /// `SET key value [PX milliseconds]`.
    public func set(_ key: some RedisArgument, to value: some RedisArgument, expiresIn: Duration? = nil) async throws(RedisError) {
        let command =
            if let expiresIn {
                RedisCommand("SET", key, value, "PX", Int(expiresIn.wholeMilliseconds))
            } else {
                RedisCommand("SET", key, value)
            }
        let reply = try await send(command)
        // Inside MULTI the server answers +QUEUED: nothing was written, which is no success.
        guard case .simpleString("OK") = reply else { throw unexpected(reply, "SET") }
    }

    /// `DEL key...`: how many keys existed.
    @discardableResult
    public func delete(_ keys: any RedisArgument...) async throws(RedisError) -> Int {
        try await integer(RedisCommand("DEL", arguments: keys))
    }

    /// `INCRBY key by`: the new value.
    @discardableResult
    public func increment(_ key: some RedisArgument, by amount: Int = 1) async throws(RedisError) -> Int {
        try await integer(RedisCommand("INCRBY", key, amount))
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    @discardableResult
    public func publish(_ message: some RedisArgument, to channel: some RedisArgument) async throws(RedisError) -> Int {
        try await integer(RedisCommand("PUBLISH", channel, message))
    }

    private func integer(_ command: RedisCommand) async throws(RedisError) -> Int {
        let reply = try await send(command)
        guard case .integer(let value) = reply else { throw unexpected(reply, command.name) }
        return Int(value)
    }

    private func unexpected(_ reply: RESPValue, _ command: String) -> RedisError {
        RedisError(.unexpectedReply, message: "unexpected reply \(String(describing: reply).prefix(200))", command: command)
    }
}

import Foundation
import NIOCore

/// An item read from memcached.
public struct MemcachedItem: Sendable, Hashable {
    /// The value's bytes.
    public var value: ByteBuffer
    /// The client flags stored with it.
    public var flags: UInt32
    /// The CAS token, for ``MemcachedCommandRunner/compareAndSwap(_:to:cas:flags:expiry:)``.
    public var cas: UInt64

    /// The value as UTF-8 text.
    public var string: String { String(buffer: value) }
}

/// Anything that sends requests about keys to memcached: a ``MemcachedConnection``
/// (one server), a ``MemcachedClient`` (the server the key's ring position names).
/// The typed operations below are written once, here.
public protocol MemcachedCommandRunner: Sendable {
    /// Sends one request about `key` (the server is chosen by it, where there
    /// are several) and returns its reply; `CLIENT_ERROR` and `SERVER_ERROR` are thrown.
    func send(_ command: MetaCommand, routedBy key: String) async throws(MemcachedError) -> MemcachedReply
    /// The largest value a write may carry.
    var maxItemSize: Int { get }
    /// Whether keys with spaces or control characters are allowed (sent base64-encoded).
    var binaryKeys: Bool { get }
}

extension MemcachedCommandRunner {
    /// Keys are text without spaces or control characters, unless a runner says otherwise.
    public var binaryKeys: Bool { false }
}

extension MemcachedCommandRunner {
    /// The item under `key`, or `nil` on a miss.
    public func get(_ key: String) async throws(MemcachedError) -> MemcachedItem? {
        let command = MetaCommand.get(try wire(key))
        switch try await response(command, key) {
        case .value(let value, let flags): return MemcachedItem(value: value, flags: flags.clientFlags ?? 0, cas: flags.cas ?? 0)
        case .status(.miss, _): return nil
        case let other: throw MetaResponse.unexpected(other, command)
        }
    }

    /// Stores `value` under `key` whatever is there.
    public func set(_ key: String, to value: ByteBuffer, flags: UInt32 = 0, expiry: Duration? = nil) async throws(MemcachedError) {
        try await store(key, value, flags: flags, expiry: expiry, mode: .set)
    }

    /// Stores `value` only when `key` is absent; ``MemcachedError/Code/notStored`` otherwise.
    public func add(_ key: String, _ value: ByteBuffer, flags: UInt32 = 0, expiry: Duration? = nil) async throws(MemcachedError) {
        try await store(key, value, flags: flags, expiry: expiry, mode: .add)
    }

    /// Stores `value` only when `key` is present; ``MemcachedError/Code/notStored`` otherwise.
    public func replace(_ key: String, with value: ByteBuffer, flags: UInt32 = 0, expiry: Duration? = nil) async throws(MemcachedError) {
        try await store(key, value, flags: flags, expiry: expiry, mode: .replace)
    }

    /// Adds `value` after the present value; ``MemcachedError/Code/notStored`` when the key is absent.
    public func append(_ value: ByteBuffer, to key: String) async throws(MemcachedError) {
        try await store(key, value, flags: 0, expiry: nil, mode: .append)
    }

    /// Adds `value` before the present value; ``MemcachedError/Code/notStored`` when the key is absent.
    public func prepend(_ value: ByteBuffer, to key: String) async throws(MemcachedError) {
        try await store(key, value, flags: 0, expiry: nil, mode: .prepend)
    }

    /// Stores `value` only if the item is still the version `cas` came with:
    /// ``MemcachedError/Code/exists`` when another write came first, ``MemcachedError/Code/notFound`` when it is gone.
    public func compareAndSwap(
        _ key: String, to value: ByteBuffer, cas: UInt64, flags: UInt32 = 0, expiry: Duration? = nil
    ) async throws(MemcachedError) {
        try await store(key, value, flags: flags, expiry: expiry, mode: .set, cas: cas)
    }

    /// Deletes `key`; false when it was not there.
    @discardableResult
    public func delete(_ key: String) async throws(MemcachedError) -> Bool {
        let command = MetaCommand.delete(try wire(key))
        switch try await response(command, key) {
        case .status(.stored, _): return true
        case .status(.notFound, _): return false
        case let other: throw MetaResponse.unexpected(other, command)
        }
    }

    /// Adds `delta` to the number stored under `key` (wrapping at 2^64); `nil` when the key is absent.
    @discardableResult
    public func increment(_ key: String, by delta: UInt64 = 1) async throws(MemcachedError) -> UInt64? {
        try await arithmetic(key, delta, increment: true)
    }

    /// Subtracts `delta` from the number stored under `key` (stopping at 0); `nil` when the key is absent.
    @discardableResult
    public func decrement(_ key: String, by delta: UInt64 = 1) async throws(MemcachedError) -> UInt64? {
        try await arithmetic(key, delta, increment: false)
    }

    /// Sets a new expiry on `key`; false when it is not there.
    @discardableResult
    public func touch(_ key: String, expiry: Duration?) async throws(MemcachedError) -> Bool {
        let command = MetaCommand.touch(try wire(key), ttl: Self.ttl(expiry))
        switch try await response(command, key) {
        case .status(.stored, _): return true
        case .status(.miss, _): return false
        case let other: throw MetaResponse.unexpected(other, command)
        }
    }

    private func store(
        _ key: String, _ value: ByteBuffer, flags: UInt32, expiry: Duration?, mode: StoreMode, cas: UInt64? = nil
    ) async throws(MemcachedError) {
        let wireKey = try wire(key)
        guard value.readableBytes <= maxItemSize else {
            throw MemcachedError(
                .tooLarge, message: "a value of \(value.readableBytes) bytes, more than the item size limit of \(maxItemSize)")
        }
        let command = MetaCommand.store(wireKey, value: value, flags: flags, ttl: Self.ttl(expiry), mode: mode, cas: cas)
        switch try await response(command, key) {
        case .status(.stored, _): return
        case .status(.notStored, _): throw MemcachedError(.notStored, message: "not stored (\(mode))")
        case .status(.exists, _): throw MemcachedError(.exists, message: "the item changed since its CAS token was read")
        case .status(.notFound, _): throw MemcachedError(.notFound, message: "the item is gone")
        case let other: throw MetaResponse.unexpected(other, command)
        }
    }

    private func arithmetic(_ key: String, _ delta: UInt64, increment: Bool) async throws(MemcachedError) -> UInt64? {
        let command = MetaCommand.arithmetic(try wire(key), delta: delta, increment: increment)
        switch try await response(command, key) {
        case .value(let number, _):
            guard let value = UInt64(String(buffer: number)) else {
                throw MemcachedError(.protocolViolation, message: "ma returned a value that is not a number")
            }
            return value
        case .status(.notFound, _): return nil
        case let other: throw MetaResponse.unexpected(other, command)
        }
    }

    private func wire(_ key: String) throws(MemcachedError) -> (bytes: [UInt8], base64: Bool) {
        try MemcachedKey.wire(key.utf8, binary: binaryKeys)
    }

    private func response(_ command: MetaCommand, _ key: String) async throws(MemcachedError) -> MetaResponse {
        try MetaResponse.single(try await send(command, routedBy: key), command)
    }

    /// memcached's TTL: seconds, 0 for never; past 30 days it is read as a Unix time, so longer ones are sent as one.
    static func ttl(_ expiry: Duration?) -> Int {
        guard let expiry, expiry > .zero else { return 0 }
        let seconds = max(1, Int(expiry.components.seconds) + (expiry.components.attoseconds > 0 ? 1 : 0))
        return seconds <= 30 * 24 * 3600 ? seconds : Int(Date().timeIntervalSince1970) + seconds
    }
}

extension MetaResponse {
    /// The one reply of `command`, which must not be `STAT` lines.
    static func single(_ reply: MemcachedReply, _ command: MetaCommand) throws(MemcachedError) -> MetaResponse {
        guard case .response(let response) = reply.body else {
            throw MemcachedError(.protocolViolation, message: "\(command.name) was answered with STAT lines")
        }
        return response
    }

    /// The error for a reply `command` cannot have.
    static func unexpected(_ response: MetaResponse, _ command: MetaCommand) -> MemcachedError {
        MemcachedError(.protocolViolation, message: "\(command.name) was answered \(response.kind)")
    }

    /// The reply's first word.
    var kind: String {
        switch self {
        case .value: "VA"
        case .status(let status, _): status.rawValue
        case .version: "VERSION"
        case .ok: "OK"
        case .stat: "STAT"
        case .end: "END"
        case .error(let kind, _): kind.rawValue
        }
    }

}

extension MemcachedConnection {
    /// Expires every item (`flush_all`).
    public func flushAll() async throws(MemcachedError) {
        let command = MetaCommand.flushAll()
        guard case .ok = try MetaResponse.single(try await send(command), command) else {
            throw MemcachedError(.protocolViolation, message: "flush_all was not answered OK")
        }
    }

    /// The server's version (`version`): also a cheap health probe.
    public func version() async throws(MemcachedError) -> String {
        let command = MetaCommand.version
        let reply = try MetaResponse.single(try await send(command), command)
        guard case .version(let text) = reply else { throw MetaResponse.unexpected(reply, command) }
        return text
    }

    /// The server's `stats`: name → value.
    public func stats() async throws(MemcachedError) -> [String: String] {
        guard case .stats(let stats) = try await send(.stats).body else {
            throw MemcachedError(.protocolViolation, message: "stats was not answered with STAT lines")
        }
        return stats
    }

}

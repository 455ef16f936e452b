import NIOCore
import RESP

/// Something that can be an argument of a Redis command: written as one bulk
/// string, byte for byte (NUL and CRLF inside are fine).
public protocol RedisArgument: Sendable {
    /// Writes the argument as one RESP bulk string.
    func writeRedisArgument(into buffer: inout ByteBuffer)
}

extension String: RedisArgument {
    /// Its UTF-8 bytes.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(self) }
}

extension Substring: RedisArgument {
    /// Its UTF-8 bytes.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(self) }
}

extension ByteBuffer: RedisArgument {
    /// Its readable bytes.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(self) }
}

extension Array: RedisArgument where Element == UInt8 {
    /// The bytes.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(bytes: self) }
}

extension Int: RedisArgument {
    /// Its decimal digits.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(decimal: self) }
}

extension Int64: RedisArgument {
    /// Its decimal digits.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(decimal: Int(self)) }
}

extension Double: RedisArgument {
    /// Its shortest exact decimal form (`inf` and `-inf` as Redis spells them).
    public func writeRedisArgument(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(isInfinite ? (self < 0 ? "-inf" : "inf") : String(self))
    }
}

/// One command, encoded once when made: its name (for errors and logs) and its bytes on the wire.
public struct RedisCommand: Sendable {
    /// The command's name as given (`GET`, `CLIENT`...), for errors; never its arguments.
    public let name: String
    /// The command as RESP: an array of bulk strings.
    public let encoded: ByteBuffer

    /// `name` followed by `arguments`, for example `RedisCommand("SET", "key", value, "EX", 10)`.
    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments: arguments)
    }

    /// `name` followed by `arguments`.
    public init(_ name: String, arguments: [any RedisArgument]) {
        self.name = name
        var buffer = ByteBufferAllocator().buffer(capacity: 32 + name.utf8.count + arguments.count * 24)
        buffer.writeRESPArrayHeader(1 + arguments.count)
        buffer.writeRESPBulk(name)
        for argument in arguments { argument.writeRedisArgument(into: &buffer) }
        encoded = buffer
    }

    /// A command given as raw arguments, the name first (an empty list is not a command).
    public init(arguments: [ByteBuffer]) {
        name = arguments.first.map { String(buffer: $0) } ?? ""
        var buffer = ByteBufferAllocator().buffer(capacity: 16 + arguments.reduce(0) { $0 + $1.readableBytes + 16 })
        buffer.writeRESPCommand(arguments)
        encoded = buffer
    }
}

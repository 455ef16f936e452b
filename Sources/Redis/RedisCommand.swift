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
    @inlinable
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(self) }
}

extension Substring: RedisArgument {
    /// Its UTF-8 bytes.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(self) }
}

extension ByteBuffer: RedisArgument {
    /// Its readable bytes.
    @inlinable
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(self) }
}

extension Array: RedisArgument where Element == UInt8 {
    /// The bytes.
    public func writeRedisArgument(into buffer: inout ByteBuffer) { buffer.writeRESPBulk(bytes: self) }
}

extension Int: RedisArgument {
    /// Its decimal digits.
    @inlinable
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
    ///
    /// The arguments are a parameter pack, not an array of existentials: the
    /// command is encoded without boxing its arguments or allocating a list.
    @inlinable
    public init<each Argument: RedisArgument>(_ name: String, _ arguments: repeat each Argument) {
        var count = 0
        for _ in repeat each arguments { count += 1 }
        self.init(name, argumentCount: count) { buffer in
            for argument in repeat each arguments { argument.writeRedisArgument(into: &buffer) }
        }
    }

    /// `name` followed by `arguments`.
    public init(_ name: String, arguments: [any RedisArgument]) {
        self.init(name, argumentCount: arguments.count) { buffer in
            for argument in arguments { argument.writeRedisArgument(into: &buffer) }
        }
    }

    /// The array header and the name, then what `writeArguments` writes (`argumentCount` bulks).
    @inlinable
    init(_ name: String, argumentCount: Int, _ writeArguments: (inout ByteBuffer) -> Void) {
        var buffer = ByteBufferAllocator().buffer(capacity: 32 + name.utf8.count + argumentCount * 24)
        buffer.writeRESPArrayHeader(1 + argumentCount)
        buffer.writeRESPBulk(name)
        writeArguments(&buffer)
        self.name = name
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

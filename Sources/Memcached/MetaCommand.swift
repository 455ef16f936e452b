import NIOCore

/// How `ms` stores (`M` flag).
package enum StoreMode: UInt8, Sendable, Hashable {
    /// Store whatever is there (`S`).
    case set = 0x53
    /// Only when the key is absent (`E`).
    case add = 0x45
    /// Only when the key is present (`R`).
    case replace = 0x52
    /// After the present value (`A`).
    case append = 0x41
    /// Before the present value (`P`).
    case prepend = 0x50
}

/// One request, encoded once when made: the meta protocol (`mg`, `ms`, `md`,
/// `ma`, `mn`) for data, the text protocol for `version`, `flush_all` and `stats`.
///
/// Opaque outside the package: the typed operations of ``MemcachedCommandRunner``
/// build the requests and read their replies.
public struct MetaCommand: Sendable {
    /// What the server answers to the request.
    package enum Reply: Sendable, Hashable {
        /// One line (with a value for `VA`).
        case one
        /// `STAT name value` lines up to `END`.
        case stats
    }

    /// The request's name (`mg`, `ms`, `version`...), for errors; never its key or value.
    package let name: String
    /// The bytes on the wire.
    package let encoded: ByteBuffer
    /// What the server answers.
    package let reply: Reply
    /// Whether it only reads an item (`mg` with a value): a miss is a fair answer while its server is down.
    package let isRead: Bool

    private init(_ name: String, reply: Reply = .one, isRead: Bool = false, _ write: (inout ByteBuffer) -> Void) {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        write(&buffer)
        self.name = name
        encoded = buffer
        self.reply = reply
        self.isRead = isRead
    }

    /// `mg key v f c [T ttl]`: the value with its client flags and CAS token (touching it with `ttl`).
    package static func get(_ key: (bytes: [UInt8], base64: Bool), touch ttl: Int? = nil) -> MetaCommand {
        MetaCommand("mg", isRead: true) { buffer in
            buffer.writeString("mg ")
            buffer.writeBytes(key.bytes)
            buffer.writeString(" v f c")
            if key.base64 { buffer.writeString(" b") }
            if let ttl { buffer.writeFlag(UInt8(ascii: "T"), ttl) }
            buffer.writeString("\r\n")
        }
    }

    /// `mg key T ttl`: a touch, no value.
    package static func touch(_ key: (bytes: [UInt8], base64: Bool), ttl: Int) -> MetaCommand {
        MetaCommand("mg") { buffer in
            buffer.writeString("mg ")
            buffer.writeBytes(key.bytes)
            if key.base64 { buffer.writeString(" b") }
            buffer.writeString(" T\(ttl)\r\n")
        }
    }

    /// `ms key size F flags T ttl M mode [C cas]`, then the value.
    package static func store(
        _ key: (bytes: [UInt8], base64: Bool), value: ByteBuffer, flags: UInt32, ttl: Int, mode: StoreMode, cas: UInt64? = nil
    ) -> MetaCommand {
        MetaCommand("ms") { buffer in
            buffer.reserveCapacity(key.bytes.count + value.readableBytes + 48)
            buffer.writeString("ms ")
            buffer.writeBytes(key.bytes)
            buffer.writeFlag(nil, value.readableBytes)  // the size
            buffer.writeFlag(UInt8(ascii: "F"), flags)
            buffer.writeFlag(UInt8(ascii: "T"), ttl)
            buffer.writeBytes([0x20, 0x4d, mode.rawValue])  // " M<mode>"
            if let cas { buffer.writeFlag(UInt8(ascii: "C"), cas) }
            if key.base64 { buffer.writeString(" b") }
            buffer.writeString("\r\n")
            buffer.writeImmutableBuffer(value)
            buffer.writeString("\r\n")
        }
    }

    /// `md key [C cas]`.
    package static func delete(_ key: (bytes: [UInt8], base64: Bool), cas: UInt64? = nil) -> MetaCommand {
        MetaCommand("md") { buffer in
            buffer.writeString("md ")
            buffer.writeBytes(key.bytes)
            if let cas { buffer.writeString(" C\(cas)") }
            if key.base64 { buffer.writeString(" b") }
            buffer.writeString("\r\n")
        }
    }

    /// `ma key v D delta M+|M- [N ttl J initial]`: the new value; with `initial`, a
    /// missing key is created with it (autovivify) and lives `ttl` seconds.
    package static func arithmetic(
        _ key: (bytes: [UInt8], base64: Bool), delta: UInt64, increment: Bool, initial: (value: UInt64, ttl: Int)? = nil
    ) -> MetaCommand {
        MetaCommand("ma") { buffer in
            buffer.writeString("ma ")
            buffer.writeBytes(key.bytes)
            buffer.writeString(" v D\(delta) M\(increment ? "+" : "-")")
            if let initial { buffer.writeString(" N\(initial.ttl) J\(initial.value)") }
            if key.base64 { buffer.writeString(" b") }
            buffer.writeString("\r\n")
        }
    }

    /// `mn`: answered `MN` once everything before it is answered.
    package static let noop = MetaCommand("mn") { $0.writeString("mn\r\n") }
    /// `version`.
    package static let version = MetaCommand("version") { $0.writeString("version\r\n") }
    /// `stats`: every `STAT` line up to `END`.
    package static let stats = MetaCommand("stats", reply: .stats) { $0.writeString("stats\r\n") }

    /// `flush_all [delay]`: every item expires (after `delay` seconds).
    package static func flushAll(delay: Int = 0) -> MetaCommand {
        MetaCommand("flush_all") { $0.writeString(delay > 0 ? "flush_all \(delay)\r\n" : "flush_all\r\n") }
    }
}

extension ByteBuffer {
    /// Writes a space, `letter` (a meta-protocol flag, if any) and `value` in decimal, without making a string.
    mutating func writeFlag(_ letter: UInt8?, _ value: some BinaryInteger) {
        writeInteger(UInt8(ascii: " "))
        if let letter { writeInteger(letter) }
        if value < 0 { writeInteger(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for UInt64.max's 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                count += 1
                raw[raw.count - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[(raw.count - count)...]))
        }
    }
}

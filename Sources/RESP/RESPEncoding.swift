import NIOCore

extension ByteBuffer {
    /// Writes a command as the server expects it: an array of bulk strings.
    @inlinable
    package mutating func writeRESPCommand(_ arguments: [ByteBuffer]) {
        writeRESPArrayHeader(arguments.count)
        for argument in arguments { writeRESPBulk(argument) }
    }

    /// Writes the header of an array of `count` elements: `*count\r\n`.
    @inlinable
    package mutating func writeRESPArrayHeader(_ count: Int) {
        writeRESPHeader(UInt8(ascii: "*"), count)
    }

    /// Writes `bytes` as one bulk string.
    @inlinable
    package mutating func writeRESPBulk(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { writeRESPBulk(contiguous: $0) }
    }

    /// Writes the UTF-8 bytes of `text` as one bulk string.
    @inlinable
    package mutating func writeRESPBulk(_ text: String) {
        var text = text
        text.withUTF8 { writeRESPBulk(contiguous: UnsafeRawBufferPointer($0)) }
    }

    /// `$length\r\n`, the bytes and `\r\n`, with one capacity check and one copy.
    @inlinable
    mutating func writeRESPBulk(contiguous bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        let length = Self.decimalLength(count)
        writeWithUnsafeMutableBytes(minimumWritableBytes: length + count + 5) { raw in
            let base = raw.baseAddress!
            Self.putHeader(UInt8(ascii: "$"), count, length: length, at: base)
            if count > 0 { (base + length + 3).copyMemory(from: bytes.baseAddress!, byteCount: count) }
            base.storeBytes(of: 0x0D, toByteOffset: length + 3 + count, as: UInt8.self)
            base.storeBytes(of: 0x0A, toByteOffset: length + 4 + count, as: UInt8.self)
            return length + count + 5
        }
    }

    /// Writes the decimal digits of `value` as one bulk string, as Redis reads integer arguments.
    @inlinable
    package mutating func writeRESPBulk(decimal value: Int) {
        let length = Self.decimalLength(value)
        writeRESPHeader(UInt8(ascii: "$"), length)
        writeWithUnsafeMutableBytes(minimumWritableBytes: length + 2) { raw in
            Self.putDecimal(value, length: length, into: raw)
            raw[length] = 0x0D
            raw[length + 1] = 0x0A
            return length + 2
        }
    }

    /// Writes the UTF-8 bytes of `text` as one bulk string.
    @inlinable
    package mutating func writeRESPBulk(_ text: some StringProtocol) {
        writeRESPHeader(UInt8(ascii: "$"), text.utf8.count)
        writeBytes(text.utf8)
        writeCRLF()
    }

    /// Writes `bytes` as one bulk string.
    @inlinable
    package mutating func writeRESPBulk(bytes: some Collection<UInt8>) {
        writeRESPHeader(UInt8(ascii: "$"), bytes.count)
        writeBytes(bytes)
        writeCRLF()
    }

    /// Writes `value` in RESP (RESP3 types in their RESP3 form), as a server
    /// would: for fake servers in tests and for tools.
    package mutating func writeRESPValue(_ value: RESPValue) {
        switch value {
        case .simpleString(let text):
            writeLine(UInt8(ascii: "+"), text)
        case .error(let text):
            writeLine(UInt8(ascii: "-"), text)
        case .integer(let number):
            writeLine(UInt8(ascii: ":"), String(number))
        case .bulkString(nil):
            writeString("$-1\r\n")
        case .bulkString(let bytes?):
            writeRESPHeader(UInt8(ascii: "$"), bytes.readableBytes)
            writeImmutableBuffer(bytes)
            writeCRLF()
        case .array(nil):
            writeString("*-1\r\n")
        case .array(let values?):
            writeAggregate(UInt8(ascii: "*"), values)
        case .null:
            writeString("_\r\n")
        case .boolean(let flag):
            writeString(flag ? "#t\r\n" : "#f\r\n")
        case .double(let number):
            let text = number.isNaN ? "nan" : number.isInfinite ? (number < 0 ? "-inf" : "inf") : "\(number)"
            writeLine(UInt8(ascii: ","), text)
        case .bigNumber(let digits):
            writeLine(UInt8(ascii: "("), digits)
        case .verbatimString(let format, let text):
            writeRESPHeader(UInt8(ascii: "="), 4 + text.readableBytes)
            writeString(format + ":")
            writeImmutableBuffer(text)
            writeCRLF()
        case .map(let pairs):
            writeRESPHeader(UInt8(ascii: "%"), pairs.count)
            for pair in pairs {
                writeRESPValue(pair.key)
                writeRESPValue(pair.value)
            }
        case .set(let values):
            writeAggregate(UInt8(ascii: "~"), values)
        case .push(let values):
            writeAggregate(UInt8(ascii: ">"), values)
        }
    }

    private mutating func writeAggregate(_ type: UInt8, _ values: [RESPValue]) {
        writeRESPHeader(type, values.count)
        for value in values { writeRESPValue(value) }
    }

    private mutating func writeLine(_ type: UInt8, _ text: String) {
        writeInteger(type)
        writeString(text)
        writeCRLF()
    }

    /// `*count\r\n`, `$length\r\n` and the like, in one bounds check and without making a String.
    @inlinable
    mutating func writeRESPHeader(_ type: UInt8, _ count: Int) {
        let length = Self.decimalLength(count)
        writeWithUnsafeMutableBytes(minimumWritableBytes: length + 3) { raw in
            Self.putHeader(type, count, length: length, at: raw.baseAddress!)
            return length + 3
        }
    }

    /// Puts `type`, the `length` digits of `count` and CRLF at `base` (`length + 3` bytes).
    @inlinable
    static func putHeader(_ type: UInt8, _ count: Int, length: Int, at base: UnsafeMutableRawPointer) {
        base.storeBytes(of: type, as: UInt8.self)
        putDecimal(count, length: length, into: UnsafeMutableRawBufferPointer(start: base + 1, count: length))
        base.storeBytes(of: 0x0D, toByteOffset: length + 1, as: UInt8.self)
        base.storeBytes(of: 0x0A, toByteOffset: length + 2, as: UInt8.self)
    }

    /// How many bytes the decimal form of `value` takes, its sign included.
    @inlinable
    static func decimalLength(_ value: Int) -> Int {
        var remaining = value.magnitude
        var length = value < 0 ? 2 : 1
        while remaining >= 10 {
            remaining /= 10
            length += 1
        }
        return length
    }

    /// Puts the `length` bytes of the decimal form of `value` at the start of `raw`.
    @inlinable
    static func putDecimal(_ value: Int, length: Int, into raw: UnsafeMutableRawBufferPointer) {
        var remaining = value.magnitude
        var position = length - 1
        repeat {
            raw[position] = UInt8(truncatingIfNeeded: 48 + remaining % 10)
            remaining /= 10
            position -= 1
        } while remaining > 0
        if value < 0 { raw[0] = UInt8(ascii: "-") }
    }

    @inlinable
    mutating func writeCRLF() {
        writeInteger(UInt16(0x0D0A), endianness: .big)
    }
}

import CLibPQ
import SQLCore

/// One statement's parameters in the parallel arrays libpq takes (values,
/// lengths, formats, types), kept by the connection and reused from statement
/// to statement, so binding costs no allocation once the arrays have grown.
///
/// Text format (the type left for the server to infer) for everything but
/// blobs, which go as binary `bytea`. Integers are written as digits straight
/// into the buffer. Used only under the connection's gate.
final class PostgresParameters {
    private var bytes: [UInt8] = []
    /// Where each value starts in `bytes`; -1 for NULL.
    private var offsets: [Int] = []
    private var lengths: [Int32] = []
    private var formats: [Int32] = []
    private var types: [Oid] = []
    private var pointers: [UnsafePointer<CChar>?] = []

    /// How many bytes the bound values take.
    var byteCount: Int { bytes.count }

    /// Replaces the bound values with `values`.
    func bind(_ values: [SQLValue]) throws(SQLError) {
        bytes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        formats.removeAll(keepingCapacity: true)
        types.removeAll(keepingCapacity: true)
        for value in values { try append(value) }
    }

    private func append(_ value: SQLValue) throws(SQLError) {
        switch value {
        case .null:
            offsets.append(-1)
            lengths.append(0)
            formats.append(0)
            types.append(0)
        case .integer(let v): appendDigits(v)
        case .double(let v):
            if v.isNaN {
                appendText("NaN")
            } else if v.isInfinite {
                appendText(v > 0 ? "Infinity" : "-Infinity")
            } else {
                appendText(String(v))
            }
        case .text(let v):
            try Self.refuseOversized(v.utf8.count)
            guard !v.utf8.contains(0) else {
                throw SQLError(
                    .typeMismatch, message: "PostgreSQL text cannot hold a NUL character; bind it as a blob", backend: "postgres")
            }
            appendText(v)
        case .blob(let v):
            try Self.refuseOversized(v.count)
            offsets.append(bytes.count)
            bytes.append(contentsOf: v)
            bytes.append(0)
            lengths.append(Int32(v.count))
            formats.append(1)
            types.append(17)
        case .bool(let v): appendText(v ? "t" : "f")
        case .date(let v): appendText(v.description)
        case .timestamp(let v): appendText(v.description + "+00")
        case .decimal(let v): appendText(v.text)
        }
    }

    /// The largest value PostgreSQL holds in one field (`MaxAllocSize`, 1 GiB - 1): past it the
    /// server would refuse the whole message, and past 2 GiB libpq's 32-bit lengths could not
    /// even carry it. Refused before anything is sent, as a statement error.
    static let maxValueBytes = (1 << 30) - 1

    private static func refuseOversized(_ count: Int) throws(SQLError) {
        guard count <= maxValueBytes else {
            throw SQLError(
                .tooBig, message: "a parameter of \(count) bytes; PostgreSQL holds at most \(maxValueBytes) in one value",
                backend: "postgres")
        }
    }

    private func appendText(_ text: String) {
        offsets.append(bytes.count)
        let start = bytes.count
        bytes.append(contentsOf: text.utf8)
        lengths.append(Int32(bytes.count - start))
        bytes.append(0)
        formats.append(0)
        types.append(0)
    }

    /// `v` in decimal, written backwards into place: no String made.
    private func appendDigits(_ v: Int64) {
        offsets.append(bytes.count)
        let start = bytes.count
        var magnitude = v.magnitude
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        let digitsStart = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        bytes[digitsStart...].reverse()
        lengths.append(Int32(bytes.count - start))
        bytes.append(0)
        formats.append(0)
        types.append(0)
    }

    /// Calls `body` with the arrays libpq takes (types, values, lengths, formats), valid only during the call.
    func withPointers<T>(
        _ body: (UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> T
    ) -> T {
        bytes.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress)
            pointers.removeAll(keepingCapacity: true)
            for offset in offsets {
                pointers.append(offset < 0 ? nil : base?.advanced(by: offset).assumingMemoryBound(to: CChar.self))
            }
            return pointers.withUnsafeBufferPointer { values in
                types.withUnsafeBufferPointer { types in
                    lengths.withUnsafeBufferPointer { lengths in
                        formats.withUnsafeBufferPointer { formats in
                            body(types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
        }
    }
}

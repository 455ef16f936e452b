/// Where a statement's text and blob parameters are copied before they are bound:
/// one buffer per connection, reused, so that a bind costs one copy and no
/// allocation (bound with `SQLITE_TRANSIENT`, SQLite allocates a copy of each value,
/// under its memory lock). The bindings point into the buffer (`SQLITE_STATIC`)
/// until the statement is bound again; ``SQLiteHandle`` binds every parameter
/// before each step and clears the bindings after.
///
/// Confined to the connection's thread, like its ``SQLiteHandle``.
final class SQLiteBindingArena {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0
    private var used = 0
    /// A statement whose text and blobs need more is bound with SQLite's own copies: the buffer never grows past this.
    static let maximumCapacity = 256 * 1024

    deinit { base?.deallocate() }

    /// Starts a statement's bindings, with room for `bytes`; `false` when they are too many for the arena.
    /// Any earlier bindings into the arena are then stale: their statement must be bound again before it runs.
    func reset(reserving bytes: Int) -> Bool {
        used = 0
        guard bytes <= Self.maximumCapacity else { return false }
        if bytes > capacity {
            base?.deallocate()
            capacity = max(bytes, min(Self.maximumCapacity, capacity * 2), 1_024)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }
        return true
    }

    /// Copies `text`'s UTF-8 bytes into the room reserved by ``reset(reserving:)``.
    func copy(_ text: String) -> UnsafeRawBufferPointer {
        let count = text.utf8.count
        let destination = claim(count)
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { source in
            if let start = source.baseAddress { destination.copyMemory(from: start, byteCount: source.count) }
        }
        if copied == nil {
            for (offset, byte) in text.utf8.enumerated() { destination.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self) }
        }
        return UnsafeRawBufferPointer(start: destination, count: count)
    }

    /// Copies `bytes` into the room reserved by ``reset(reserving:)``.
    func copy(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
        let destination = claim(bytes.count)
        bytes.withUnsafeBytes { source in
            if let start = source.baseAddress { destination.copyMemory(from: start, byteCount: source.count) }
        }
        return UnsafeRawBufferPointer(start: destination, count: bytes.count)
    }

    private func claim(_ count: Int) -> UnsafeMutableRawPointer {
        precondition(used + count <= capacity || count == 0, "SQLiteBindingArena: more bytes than reserved")
        guard let base else { return Self.empty }
        defer { used += count }
        return base + used
    }

    /// Where zero bytes point when nothing was reserved (SQLite binds NULL for a null pointer).
    private static var empty: UnsafeMutableRawPointer { UnsafeMutableRawPointer(mutating: ("" as StaticString).utf8Start) }
}

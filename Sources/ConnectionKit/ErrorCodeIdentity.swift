import Synchronization

/// The identity of one of the package's error codes (`SQLError.Code`, `RedisError.Code`,
/// `MemcachedError.Code`): each code made gets its own, so codes compare by identity, never by
/// name, and two codes that happen to share a name are still two codes. A code stores it with
/// its name and class, which it determines, so the code's synthesized `==` and `hash` are the
/// identity's.
package struct ErrorCodeIdentity: Hashable, Sendable {
    private static let last = Atomic<UInt32>(0)
    private let value: UInt32

    /// A new identity, never handed out before in this process.
    package init() { value = Self.last.add(1, ordering: .relaxed).newValue }
}

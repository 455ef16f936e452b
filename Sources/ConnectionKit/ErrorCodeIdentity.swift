import Synchronization

/// The identities of the package's error codes (`SQLError.Code`, `RedisError.Code`,
/// `MemcachedError.Code`): each code made gets its own, so codes compare by identity (one
/// integer), never by name, and two codes that happen to share a name are still two codes.
package enum ErrorCodeIdentity {
    private static let last = Atomic<UInt32>(0)

    /// A new identity, never handed out before in this process.
    package static func next() -> UInt32 { last.add(1, ordering: .relaxed).newValue }
}

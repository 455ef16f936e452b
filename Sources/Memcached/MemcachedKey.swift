import Foundation

/// What a key may be, checked before any I/O (gomemcache's rule): 1 to 250
/// bytes, none of them a space, a control character or DEL. With `binary`,
/// any bytes go, sent base64-encoded with the meta protocol's `b` flag; the
/// encoded form then must fit the 250 bytes (at most 186 raw bytes).
package enum MemcachedKey {
    /// The longest key memcached accepts.
    package static let maxLength = 250

    /// Checks `key`; returns the bytes to send and whether they are base64.
    ///
    /// - Throws: ``MemcachedError/Code/malformedKey`` saying why, never showing the key.
    package static func wire(_ key: some Collection<UInt8>, binary: Bool = false) throws(MemcachedError) -> (bytes: [UInt8], base64: Bool) {
        guard !key.isEmpty else { throw MemcachedError(.malformedKey, message: "the key is empty") }
        let plain = key.allSatisfy { $0 > 0x20 && $0 != 0x7f }
        if plain {
            guard key.count <= maxLength else {
                throw MemcachedError(.malformedKey, message: "the key is \(key.count) bytes long, more than \(maxLength)")
            }
            return (Array(key), false)  // the one copy of the key
        }
        guard binary else {
            throw MemcachedError(.malformedKey, message: "the key holds a space, a control character or DEL (binary keys are an option)")
        }
        let encoded = Array(Data(key).base64EncodedString().utf8)
        guard encoded.count <= maxLength else {
            throw MemcachedError(
                .malformedKey, message: "the binary key is \(key.count) bytes long, more than 186 (its base64 form must fit 250)")
        }
        return (encoded, true)
    }
}

import Crypto

/// The server a key belongs to, by consistent hashing compatible with
/// libmemcached's weighted ketama (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`): a Swift
/// app and a C or PHP app on libmemcached agree on where every key lives.
///
/// Each server gets 160 points on a ring of 32-bit values (scaled by its share
/// of the total weight): 40 MD5 digests of `host-i` (or `host:port-i` when the
/// port is not 11211), four points each, read little-endian. A key hashes to
/// the first four bytes of its MD5, little-endian, and belongs to the first
/// point at or after that value, wrapping around. Adding a server moves only
/// the keys that now land on its points: about 1/N of them.
package struct Ketama: Sendable {
    /// One server on the ring.
    package struct Server: Sendable, Hashable {
        /// The host as the configuration names it (the name is hashed, not resolved).
        package var host: String
        /// The TCP port.
        package var port: Int
        /// Its weight: its share of the points, relative to the others. Default 1.
        package var weight: Int

        /// Creates a server.
        package init(host: String, port: Int = 11211, weight: Int = 1) {
            self.host = host
            self.port = port
            self.weight = max(1, weight)
        }

        /// What libmemcached hashes for the server's points: `host` for port 11211, else `host:port`.
        var pointName: String { port == 11211 ? host : "\(host):\(port)" }
    }

    /// The servers, in the order given; ``server(for:)`` returns an index into it.
    package let servers: [Server]
    /// The ring: sorted point values and the index of the server each belongs to.
    private let points: [(value: UInt32, server: Int)]

    /// Builds the ring for `servers` (an empty list gives an empty ring).
    package init(servers: [Server]) {
        self.servers = servers
        let totalWeight = servers.reduce(0) { $0 + $1.weight }
        var points: [(value: UInt32, server: Int)] = []
        for (index, server) in servers.enumerated() {
            // libmemcached computes the share in single precision; so do we, for the same counts.
            let share = Float(server.weight) / Float(totalWeight)
            let perServer = Int((share * 160 / 4 * Float(servers.count) + 0.0000000001).rounded(.down)) * 4
            for digestIndex in 0..<(perServer / 4) {
                let digest = Array(Insecure.MD5.hash(data: Array("\(server.pointName)-\(digestIndex)".utf8)))
                for alignment in 0..<4 {
                    points.append((Self.littleEndian(digest, at: alignment * 4), index))
                }
            }
        }
        // Equal values keep the order they were made in, as libmemcached's qsort mostly does; such ties are vanishingly rare.
        self.points = points.enumerated().sorted { ($0.element.value, $0.offset) < ($1.element.value, $1.offset) }.map(\.element)
    }

    /// How many points the ring has.
    package var pointCount: Int { points.count }

    /// The index in ``servers`` of the server `key` belongs to; `nil` when there is none.
    package func server(for key: some Collection<UInt8>) -> Int? {
        guard !points.isEmpty else { return nil }
        let hash = Self.hash(key)
        var low = 0
        var high = points.count
        while low < high {
            let middle = (low + high) / 2
            if points[middle].value < hash { low = middle + 1 } else { high = middle }
        }
        return points[low == points.count ? 0 : low].server
    }

    /// The key's position on the ring: the first four bytes of its MD5, little-endian.
    static func hash(_ key: some Collection<UInt8>) -> UInt32 {
        let digest =
            key.withContiguousStorageIfAvailable { Insecure.MD5.hash(data: UnsafeRawBufferPointer($0)) }
            ?? Insecure.MD5.hash(data: Array(key))
        return digest.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }

    private static func littleEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

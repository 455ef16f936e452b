import ConnectionKit
import Foundation

/// TCP ports on 127.0.0.1 for test servers and for addresses that must refuse connections.
public enum LoopbackPorts {
    /// A free TCP port on 127.0.0.1 for a server to listen on.
    ///
    /// It is picked below the kernel's ephemeral range (32768 and up here), so
    /// that no outgoing connection can take it as its source port before the
    /// server binds it, and never twice in one process, so that servers started
    /// at the same time (a Galera node needs three ports) never collide.
    public static func free() throws -> Int {
        for _ in 0..<500 {
            let candidate = Int.random(in: 15_000..<32_000)
            let fresh = handedOutPorts.withLock { $0.insert(candidate).inserted }
            if fresh, canBind(candidate) { return candidate }
        }
        throw NoFreePort()
    }

    private static let handedOutPorts = Locked(Set<Int>())

    private static func canBind(_ port: Int) -> Bool {
        withSocket(port: port) { fd, address, length in bind(fd, address, length) == 0 }
    }

    /// Runs `body` with a fresh TCP socket and the address 127.0.0.1:`port` (the socket is closed afterwards).
    public static func withSocket(port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

/// No free port was found on 127.0.0.1 between 15000 and 31999.
public struct NoFreePort: Error, CustomStringConvertible {
    public var description: String { "cannot find a free port in 15000-31999" }
}

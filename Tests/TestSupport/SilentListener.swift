import Foundation

/// A TCP socket on 127.0.0.1 that listens and never accepts: the kernel completes a
/// client's handshake, and nobody ever speaks. For tests of connect deadlines.
public final class SilentListener: Sendable {
    /// The port it listens on.
    public let port: Int
    private let fd: Int32

    /// Binds an ephemeral port and listens.
    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SilentListenerError() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound, listen(fd, 8) == 0 else {
            close(fd)
            throw SilentListenerError()
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// The listening socket could not be made.
public struct SilentListenerError: Error, CustomStringConvertible {
    public var description: String { "cannot listen on 127.0.0.1" }
}

import ConnectionKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// TCP options that end a connection whose peer died or whose network went dark within a
/// bound, instead of the system's defaults (keepalives after two hours, retransmissions for
/// some fifteen minutes). For C clients that take no such setting themselves (Connector/C).
package enum DeadPeerDetection {
    /// Turns on keepalives (a probe after 10 s idle, every 5 s, 3 unanswered) and, where the
    /// system has it (Linux), `TCP_USER_TIMEOUT` of `userTimeout` on TCP socket `fd`. A socket
    /// that takes no TCP options (a Unix socket) is left as it is.
    package static func enable(on fd: Int32, userTimeout: Duration) {
        var on: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else { return }
        #if canImport(Glibc)
            for (option, value) in [(TCP_KEEPIDLE, 10), (TCP_KEEPINTVL, 5), (TCP_KEEPCNT, 3)] {
                var value = Int32(value)
                _ = setsockopt(fd, Int32(IPPROTO_TCP), option, &value, socklen_t(MemoryLayout<Int32>.size))
            }
            var milliseconds = UInt32(clamping: userTimeout.wholeMilliseconds)
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &milliseconds, socklen_t(MemoryLayout<UInt32>.size))
        #endif
    }
}

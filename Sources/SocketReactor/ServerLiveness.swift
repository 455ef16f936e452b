#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whether a database server still answers, asked over a new connection of its own while a
/// statement waits on another one.
///
/// A server whose process is stopped (SIGSTOP) or wedged keeps its sockets open and its kernel
/// keeps acknowledging what the client sends, so neither TCP keepalives nor `TCP_USER_TIMEOUT`
/// notice it: a statement would wait for as long as the server stays stopped. A server that
/// still runs answers a new connection at once (PostgreSQL's postmaster answers an
/// `SSLRequest` with one byte; MariaDB greets first), however long the statement itself takes.
package enum ServerLiveness {
    /// How long a check may take before the server counts as not answering.
    package static let checkTimeout: Duration = .seconds(5)

    /// Connects to the peer of `socket` (the same address, TCP or Unix), sends `hello` (if any),
    /// and reports whether at least one byte comes back within `timeout`. Never blocks a
    /// thread: the connect and the reads wait on ``SocketReactor``. Any failure (refused, reset,
    /// silent until the deadline, the peer unknown) is `false`.
    package static func answers(
        peerOf socket: Int32, hello: [UInt8], within timeout: Duration = checkTimeout
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &length) }
        }
        guard named == 0 else { return false }
        #if canImport(Glibc)
            let probe = Glibc.socket(Int32(address.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
            let probe = Darwin.socket(Int32(address.ss_family), SOCK_STREAM, 0)
        #endif
        guard probe >= 0 else { return false }
        defer { close(probe) }
        guard fcntl(probe, F_SETFL, fcntl(probe, F_GETFL) | O_NONBLOCK) == 0 else { return false }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, length) }
        }
        if connected != 0 {
            guard errno == EINPROGRESS || errno == EAGAIN else { return false }
            do {
                try await SocketReactor.shared.wait(for: probe, .writable, until: deadline, cancellable: false)
            } catch {
                return false
            }
            var failure: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(probe, SOL_SOCKET, SO_ERROR, &failure, &size) == 0, failure == 0 else { return false }
        }
        if !hello.isEmpty {
            #if canImport(Glibc)
                let flags = Int32(MSG_NOSIGNAL)  // a peer gone meanwhile is a failed check, not SIGPIPE
            #else
                let flags: Int32 = 0
            #endif
            let sent = hello.withUnsafeBytes { send(probe, $0.baseAddress, $0.count, flags) }
            guard sent == hello.count else { return false }
        }
        var byte: UInt8 = 0
        while true {
            let received = recv(probe, &byte, 1, 0)
            if received > 0 { return true }
            if received == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return false }
            do {
                try await SocketReactor.shared.wait(for: probe, .readable, until: deadline, cancellable: false)
            } catch {
                return false
            }
        }
    }
}

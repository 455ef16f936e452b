#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How ``SocketReactor`` learns which sockets are ready: it arms a socket once for a
/// direction, with a tag, and its threads wait for the tags of the sockets that became ready.
///
/// Two kinds: `epoll` on Linux (an arm made while a thread waits is seen at once), and
/// `poll(2)`, which every POSIX system has, for the others (an arm wakes the waiting thread,
/// which then polls the new set). `CLUSTERSQL_SOCKET_POLLER=poll` chooses `poll(2)` on Linux
/// too, so that the code a Mac runs is tested here.
protocol ReadinessPoller: Sendable {
    /// `epoll` or `poll`.
    var name: String { get }
    /// Arms `fd` once (one event, then it must be armed again) for `direction`, tagged
    /// with `tag`; `false` when the socket cannot be watched (closed, say).
    func arm(_ fd: Int32, _ direction: SocketReactor.Direction, tag: UInt64) -> Bool
    /// Waits at most `timeout` milliseconds and writes the tags of the ready sockets into
    /// `tags` (``SocketReactor``'s wake tag when ``wake()`` was called); how many.
    func wait(into tags: UnsafeMutableBufferPointer<UInt64>, timeout: Int32) -> Int
    /// Makes a thread in ``wait(into:timeout:)`` return (with the wake tag).
    func wake()
    /// Clears a wake once it was seen.
    func drainWake()
}

/// The tag `ReadinessPoller.wait(into:timeout:)` reports for a `ReadinessPoller.wake()`.
let readinessWakeTag = UInt64.max

/// The poller for this system: `epoll` on Linux unless `CLUSTERSQL_SOCKET_POLLER` is `poll`.
func makeReadinessPoller() -> any ReadinessPoller {
    #if os(Linux)
        if let choice = getenv("CLUSTERSQL_SOCKET_POLLER").map({ String(cString: $0) }), choice == "poll" {
            return PollReadinessPoller()
        }
        return EpollReadinessPoller()
    #else
        return PollReadinessPoller()
    #endif
}

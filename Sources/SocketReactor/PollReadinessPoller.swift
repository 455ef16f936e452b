import ConnectionKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `ReadinessPoller` on `poll(2)`, which every POSIX system has: the armed sockets are kept
/// here, each wait polls them all with a pipe to wake it, and a socket that reports an event
/// is disarmed (one-shot, as with epoll). An arm wakes a thread that is polling, so that the
/// next poll includes it. A socket `poll` cannot watch (closed) reports `POLLNVAL`: ready, and
/// the client library's next call says why.
final class PollReadinessPoller: ReadinessPoller {
    private struct Armed {
        var events: Int16
        var tag: UInt64
    }

    private let armed = Locked<[Int32: Armed]>([:])
    let name = "poll"
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init() {
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0, "pipe failed: errno \(errno)")
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        (wakeRead, wakeWrite) = (ends[0], ends[1])
    }

    func arm(_ fd: Int32, _ direction: SocketReactor.Direction, tag: UInt64) -> Bool {
        guard fd >= 0 else { return false }
        let events: Int16 =
            switch direction {
            case .readable: Int16(POLLIN)
            case .writable: Int16(POLLOUT)
            case .readableOrWritable: Int16(POLLIN | POLLOUT)
            }
        armed.withLock { $0[fd] = Armed(events: events, tag: tag) }
        wake()
        return true
    }

    func wait(into tags: UnsafeMutableBufferPointer<UInt64>, timeout: Int32) -> Int {
        let snapshot = armed.withLock { Array($0) }
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        fds.reserveCapacity(snapshot.count + 1)
        for (fd, entry) in snapshot { fds.append(pollfd(fd: fd, events: entry.events, revents: 0)) }
        guard poll(&fds, nfds_t(fds.count), timeout) > 0 else { return 0 }
        var count = 0
        if fds[0].revents != 0, count < tags.count {
            tags[count] = readinessWakeTag
            count += 1
        }
        armed.withLock { armed in
            for (index, (fd, entry)) in snapshot.enumerated() where fds[index + 1].revents != 0 && count < tags.count {
                // Still the same arm (not disarmed by another thread, nor armed anew since): one event, then disarmed.
                guard armed[fd]?.tag == entry.tag else { continue }
                armed[fd] = nil
                tags[count] = entry.tag
                count += 1
            }
        }
        return count
    }

    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // a full pipe already wakes the poller
    }

    func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }
}

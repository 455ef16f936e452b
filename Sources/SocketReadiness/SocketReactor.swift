import ConnectionKit
import Foundation

/// Waits for sockets to become readable or writable without blocking a
/// cooperative thread: one `poll(2)` thread serves every registered socket.
///
/// Client libraries with a non-blocking API (libpq's `PQconnectPoll` and
/// `PQconsumeInput`, Connector/C's `_start`/`_cont` calls) tell which
/// direction they wait for; ``wait(for:_:until:)`` suspends the caller until
/// the socket is ready, the deadline passes, or the task is cancelled.
public final class SocketReactor: Sendable {
    /// What to wait for.
    public enum Direction: Sendable {
        /// Data (or end of stream, or an error) can be read.
        case readable
        /// Data can be written.
        case writable
    }

    /// Why a wait ended without the socket becoming ready.
    public enum WaitError: Error, Sendable, Equatable {
        /// The deadline passed first.
        case timedOut
        /// The task was cancelled.
        case cancelled
        /// The socket already has a waiter (a connection waits for one thing at a time).
        case busy
    }

    private struct Waiter {
        let id: UInt64
        let direction: Direction
        let deadline: ContinuousClock.Instant?
        let continuation: CheckedContinuation<Result<Void, WaitError>, Never>
    }

    private struct State {
        var waiters: [Int32: Waiter] = [:]
        var nextID: UInt64 = 0
    }

    /// The reactor every backend shares; its thread starts on first use.
    public static let shared = SocketReactor()

    private let state = Locked(State())
    private let wakeRead: Int32
    private let wakeWrite: Int32

    private init() {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe() failed")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        let thread = Thread { [self] in self.loop() }
        thread.name = "socket-reactor"
        thread.start()
    }

    /// Suspends until `fd` is ready in `direction`, `deadline` passes, or (when
    /// `cancellable`) the task is cancelled.
    public func wait(
        for fd: Int32, _ direction: Direction, until deadline: ContinuousClock.Instant?, cancellable: Bool = true
    ) async throws(WaitError) {
        let id = state.withLock { s -> UInt64 in
            s.nextID &+= 1
            return s.nextID
        }
        let result: Result<Void, WaitError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, WaitError>, Never>) in
                let refusal = state.withLock { s -> WaitError? in
                    if cancellable, Task.isCancelled { return .cancelled }
                    if s.waiters[fd] != nil { return .busy }
                    s.waiters[fd] = Waiter(id: id, direction: direction, deadline: deadline, continuation: continuation)
                    return nil
                }
                if let refusal {
                    continuation.resume(returning: .failure(refusal))
                } else {
                    wake()
                }
            }
        } onCancel: {
            guard cancellable else { return }
            let waiter = state.withLock { s -> Waiter? in
                guard let w = s.waiters[fd], w.id == id else { return nil }
                s.waiters[fd] = nil
                return w
            }
            waiter?.continuation.resume(returning: .failure(.cancelled))
            wake()
        }
        try result.get()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func loop() {
        var pollSet: [pollfd] = []
        while true {
            let now = ContinuousClock.now
            let (snapshot, expired, earliest) = state.withLock { s -> ([(Int32, Direction)], [Waiter], ContinuousClock.Instant?) in
                var expired: [Waiter] = []
                var earliest: ContinuousClock.Instant?
                for (fd, waiter) in s.waiters {
                    if let deadline = waiter.deadline {
                        if deadline <= now {
                            expired.append(waiter)
                            s.waiters[fd] = nil
                            continue
                        }
                        earliest = earliest.map { min($0, deadline) } ?? deadline
                    }
                }
                return (s.waiters.map { ($0.key, $0.value.direction) }, expired, earliest)
            }
            for waiter in expired { waiter.continuation.resume(returning: .failure(.timedOut)) }

            pollSet.removeAll(keepingCapacity: true)
            pollSet.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            for (fd, direction) in snapshot {
                pollSet.append(pollfd(fd: fd, events: Int16(direction == .readable ? POLLIN : POLLOUT), revents: 0))
            }
            var timeout: Int32 = -1
            if let earliest {
                let remaining = now.duration(to: earliest).components
                let ms = remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000 + 1
                timeout = Int32(clamping: max(0, ms))
            }
            let count = poll(&pollSet, nfds_t(pollSet.count), timeout)
            guard count > 0 else { continue }
            if pollSet[0].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 256)
                while read(wakeRead, &sink, sink.count) > 0 {}
            }
            let ready = pollSet.dropFirst().filter { $0.revents != 0 }.map(\.fd)
            guard !ready.isEmpty else { continue }
            let resumed = state.withLock { s -> [Waiter] in
                ready.compactMap { fd in
                    guard let waiter = s.waiters[fd] else { return nil }
                    s.waiters[fd] = nil
                    return waiter
                }
            }
            // Ready includes errors and hang-ups: the client library's next call reports them.
            for waiter in resumed { waiter.continuation.resume(returning: .success(())) }
        }
    }
}

import ConnectionKit
import Foundation
import Synchronization

/// Waits for sockets to become readable or writable without blocking a
/// cooperative thread: one readiness poller (epoll on Linux, `poll(2)`
/// elsewhere: `ReadinessPoller`), served by one or more threads that share
/// its events and its job queue, and also a `TaskExecutor`.
///
/// Client libraries with a non-blocking API (libpq's `PQconnectPoll` and
/// `PQconsumeInput`, Connector/C's `_start`/`_cont` calls) tell which
/// direction they wait for; ``wait(for:_:until:cancellable:)`` suspends the
/// caller until the socket is ready, the deadline passes, or the task is cancelled.
///
/// A wait costs one `epoll_ctl` on Linux (a one-shot registration, made from the
/// waiting thread): the reactor thread is not woken to learn of it, unless the
/// wait's deadline is earlier than the one it sleeps towards. With `poll(2)`
/// each wait also wakes a polling thread, which then polls the new set. A thread that
/// finds several jobs ready while another sleeps leaves it half and wakes it.
///
/// As a `TaskExecutor`, a task that prefers the reactor runs on its threads:
/// when the socket is ready the task goes on right there, with no thread
/// switch, and its next C call and wait follow on a reactor thread, which is
/// what a C program's own loop costs. Such a task must never block: every
/// socket of the process waits behind it.
///
/// ```swift
/// try await withTaskExecutorPreference(SocketReactor.shared) {
///     for id in ids { _ = try await connection.query("SELECT … WHERE id = ?", [.integer(id)]) }
/// }
/// ```
package final class SocketReactor: TaskExecutor, Sendable {
    /// What to wait for.
    package enum Direction: Sendable {
        /// Data (or end of stream, or an error) can be read.
        case readable
        /// Data can be written.
        case writable
        /// Either: for a client that must keep reading while its writes wait
        /// (libpq's pipeline mode, so that neither side's buffers fill and stall both).
        case readableOrWritable
    }

    /// Why a wait ended without the socket becoming ready.
    package enum WaitError: Error, Sendable, Equatable {
        /// The deadline passed first.
        case timedOut
        /// The task was cancelled.
        case cancelled
        /// The socket already has a waiter (a connection waits for one thing at a time).
        case busy
    }

    private struct Waiter {
        let id: UInt32
        let deadline: ContinuousClock.Instant?
        let continuation: UnsafeContinuation<Result<Void, WaitError>, Never>
    }

    /// The longest a reactor thread sleeps without an event. A new waiter whose deadline comes
    /// before a sleeping thread would wake costs a wake-up signal to it; with every sleep
    /// this short, the common deadlines (seconds away) cost none.
    static let longestSleep: Duration = .milliseconds(500)

    private struct State {
        var waiters: [Int32: Waiter] = [:]
        var jobs: [UnownedJob] = []
        /// Threads in (or about to enter) the poller's wait with a timeout.
        var sleepers = 0
        /// When the last of them to fall asleep wakes by itself; `nil`: only an event wakes it.
        var sleepingUntil: ContinuousClock.Instant?
        /// The poller was woken and the wake not yet seen.
        var wakePending = false
    }

    /// The reactor every backend shares: two threads on a machine of two cores
    /// or more (a client spread over two cores, as `pgbench -j 2` is), started
    /// on first use, living as long as the process.
    package static let shared = SocketReactor(name: "socket-reactor", threads: min(2, ProcessInfo.processInfo.activeProcessorCount))

    private let state = Locked(State())
    private let poller: any ReadinessPoller
    private let threadIDs = Locked<[UInt]>([])
    private let nextID = Atomic<UInt32>(0)

    /// Starts `threads` reactor threads named `name`, sharing one poller
    /// (`ReadinessPoller`, the system's unless `poller` is given) and one job
    /// queue; they run for the rest of the process.
    init(name: String, threads: Int = 1, poller: (any ReadinessPoller)? = nil) {
        self.poller = poller ?? makeReadinessPoller()
        for _ in 0..<max(1, threads) {
            let thread = Thread { [self] in self.loop() }
            thread.name = name
            thread.start()
        }
    }

    /// How it learns of ready sockets: `epoll` or `poll` (`ReadinessPoller`).
    var pollerName: String { poller.name }

    /// Whether the caller runs on one of the reactor's threads.
    package var isCurrent: Bool {
        let me = Self.currentThreadID
        return threadIDs.withLock { $0.contains(me) }
    }

    /// Suspends until `fd` is ready in `direction`, `deadline` passes, or (when
    /// `cancellable`) the task is cancelled. A socket that cannot be watched
    /// (closed, say) counts as ready: the client library's next call reports why.
    package func wait(
        for fd: Int32, _ direction: Direction, until deadline: ContinuousClock.Instant?, cancellable: Bool = true
    ) async throws(WaitError) {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        // An uncancellable wait (a statement in flight) needs no cancellation handler: one status record less per wait.
        guard cancellable else {
            try await suspend(fd, direction, id: id, deadline: deadline, cancellable: false).get()
            return
        }
        let result = await withTaskCancellationHandler {
            await suspend(fd, direction, id: id, deadline: deadline, cancellable: true)
        } onCancel: {
            take(fd: fd, id: id)?.continuation.resume(returning: .failure(.cancelled))
        }
        try result.get()
    }

    /// Registers the waiter, arms the socket, and suspends until the loop (or a cancellation) resumes it.
    private func suspend(
        _ fd: Int32, _ direction: Direction, id: UInt32, deadline: ContinuousClock.Instant?, cancellable: Bool
    ) async -> Result<Void, WaitError> {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<Void, WaitError>, Never>) in
            let registered = state.withLock { s -> Result<Bool, WaitError> in
                if cancellable, Task.isCancelled { return .failure(.cancelled) }
                if s.waiters[fd] != nil { return .failure(.busy) }
                s.waiters[fd] = Waiter(id: id, deadline: deadline, continuation: continuation)
                guard let deadline, s.sleepers > 0, !s.wakePending, s.sleepingUntil.map({ deadline < $0 }) ?? true else {
                    return .success(false)
                }
                s.wakePending = true
                return .success(true)
            }
            switch registered {
            case .failure(let refusal):
                continuation.resume(returning: .failure(refusal))
            case .success(let mustWake):
                let tag = UInt64(UInt32(bitPattern: fd)) << 32 | UInt64(id)
                if !poller.arm(fd, direction, tag: tag) {
                    take(fd: fd, id: id)?.continuation.resume(returning: .success(()))
                }
                if mustWake { poller.wake() }
            }
        }
    }

    /// Removes and returns `fd`'s waiter if it is still the one with `id`.
    private func take(fd: Int32, id: UInt32) -> Waiter? {
        state.withLock { s in
            guard let waiter = s.waiters[fd], waiter.id == id else { return nil }
            s.waiters[fd] = nil
            return waiter
        }
    }

    /// Runs a job of a task that prefers the reactor on one of its threads (queued in order).
    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let mustWake = state.withLock { s -> Bool in
            s.jobs.append(job)
            guard s.sleepers > 0, !s.wakePending else { return false }
            s.wakePending = true
            return true
        }
        if mustWake { poller.wake() }
    }

    private func loop() {
        threadIDs.withLock { $0.append(Self.currentThreadID) }
        let executor = asUnownedTaskExecutor()
        var tags = [UInt64](repeating: 0, count: 64)
        while true {
            // Jobs queued so far; the ones they queue wait for the next turn, after the sockets are polled.
            // When there are several and another thread sleeps, half are left to it, and it is woken.
            let (jobs, share) = state.withLock { s -> ([UnownedJob], Bool) in
                if s.jobs.count > 1, s.sleepers > 0, !s.wakePending {
                    let half = (s.jobs.count + 1) / 2
                    let mine = Array(s.jobs.prefix(half))
                    s.jobs.removeFirst(half)
                    s.wakePending = true
                    return (mine, true)
                }
                defer { s.jobs.removeAll(keepingCapacity: true) }
                return (s.jobs, false)
            }
            if share { poller.wake() }
            for job in jobs { job.runSynchronously(on: executor) }

            let now = ContinuousClock.now
            let expired = state.withLock { s -> [Waiter] in
                guard s.waiters.values.contains(where: { $0.deadline.map { $0 <= now } ?? false }) else { return [] }
                var expired: [Waiter] = []
                for (fd, waiter) in s.waiters where waiter.deadline.map({ $0 <= now }) ?? false {
                    expired.append(waiter)
                    s.waiters[fd] = nil
                }
                return expired
            }
            for waiter in expired { waiter.continuation.resume(returning: .failure(.timedOut)) }

            let (timeout, asleep) = state.withLock { s -> (Int32, Bool) in
                guard s.jobs.isEmpty else { return (0, false) }
                // Never longer than `longestSleep`: a waiter whose deadline is further away (a
                // liveness check 10 s on, say) then needs no wake-up call to be seen in time.
                let cap = now.advanced(by: Self.longestSleep)
                let earliest = min(s.waiters.values.lazy.compactMap(\.deadline).min() ?? cap, cap)
                s.sleepers += 1
                s.sleepingUntil = earliest
                let ms = now.duration(to: earliest).wholeMilliseconds + 1
                return (Int32(clamping: max(0, ms)), true)
            }
            let count = tags.withUnsafeMutableBufferPointer { poller.wait(into: $0, timeout: timeout) }
            let ready = state.withLock { s -> [Waiter] in
                if asleep { s.sleepers -= 1 }
                if s.sleepers == 0 { s.sleepingUntil = nil }
                var ready: [Waiter] = []
                for tag in tags.prefix(count) {
                    if tag == readinessWakeTag {
                        poller.drainWake()
                        s.wakePending = false
                        continue
                    }
                    let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: tag >> 32))
                    guard let waiter = s.waiters[fd], waiter.id == UInt32(truncatingIfNeeded: tag) else { continue }
                    s.waiters[fd] = nil
                    ready.append(waiter)
                }
                return ready
            }
            // Ready includes errors and hang-ups: the client library's next call reports them.
            for waiter in ready { waiter.continuation.resume(returning: .success(())) }
        }
    }

    /// The calling thread's `pthread_t` as a number: an integer on Linux, a pointer on Darwin.
    private static var currentThreadID: UInt {
        #if canImport(Darwin)
            UInt(bitPattern: pthread_self())
        #else
            UInt(pthread_self())
        #endif
    }
}

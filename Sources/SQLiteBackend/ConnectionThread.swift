import ConnectionKit
import Dispatch
import Foundation
import SQLCore
import Synchronization

/// A dedicated OS thread that runs one connection's blocking C calls in order.
///
/// Blocking calls (`sqlite3_step`, a blocking client library read) must never
/// run on Swift's cooperative pool: on a two-core machine it has two threads,
/// and one long statement would stall every task. A `ConnectionThread` runs
/// them on its own thread instead and resumes the caller when they finish.
///
/// Cancellation: when the calling task is cancelled, a cancellable job still
/// queued is dropped with `SQLError.Code.cancelled`, and one already running
/// gets its `interrupt` callback (for SQLite, `sqlite3_interrupt`). The callback
/// runs under the thread's lock and only while that very job runs, so it can
/// never interrupt another caller's statement.
///
/// It is also a `TaskExecutor`: a task that prefers it runs on the thread, and
/// then each of its calls runs at once, in place, without a thread switch
/// (the C client's own cost); a call run in place gets no `interrupt` callback,
/// its owner watches the task instead. Such a task must not block on anything
/// but the connection's own work. After ``shutdown()`` the jobs of such tasks
/// go to Swift's global executor, so none is lost.
final class ConnectionThread: TaskExecutor, Sendable {
    private struct Job {
        let id: UInt64
        var cancelled = false
        let interrupt: (@Sendable () -> Void)?
        let work: @Sendable (_ cancelled: Bool) -> Void
    }

    /// The job that runs now: what a cancellation needs to find it.
    private struct RunningJob {
        let id: UInt64
        let interrupt: (@Sendable () -> Void)?
    }

    private struct State {
        var queue: [Job] = []
        var running: RunningJob?
        var nextID: UInt64 = 0
        var stopping = false
    }

    private let state = Locked(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    /// The thread's `pthread_t`, once it runs: how a call knows it is already on the thread.
    private let threadID = Atomic<UInt>(0)

    /// Starts a thread named `name` (as seen by debuggers and `top -H`). It
    /// lives until ``shutdown()``, which its owner must call.
    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result.
    ///
    /// - Parameter interrupt: `nil` makes the job uncancellable (it runs even
    ///   for a cancelled task: rollbacks, closes). Otherwise it is called (on
    ///   the cancelling thread, under the lock) when the task is cancelled while
    ///   `body` runs; it must be quick and thread-safe.
    /// - Throws: what `body` throws; `SQLError.Code.cancelled` when a
    ///   cancellable job's task was cancelled before it started;
    ///   `SQLError.Code.closed` after ``shutdown()``.
    func run<T: Sendable>(
        interrupt: (@Sendable () -> Void)?,
        _ body: @escaping @Sendable () throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        if isCurrent { return try runInPlace(interrupt: interrupt, body) }
        let id = state.withLock { s -> UInt64 in
            s.nextID &+= 1
            return s.nextID
        }
        let result: Result<T, SQLError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, SQLError>, Never>) in
                let job = Job(id: id, interrupt: interrupt) { cancelled in
                    if cancelled {
                        continuation.resume(returning: .failure(SQLError(.cancelled, message: "cancelled before it started")))
                        return
                    }
                    do throws(SQLError) {
                        continuation.resume(returning: .success(try body()))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
                let accepted = state.withLock { s -> Bool in
                    guard !s.stopping else { return false }
                    var queued = job
                    queued.cancelled = interrupt != nil && Task.isCancelled
                    s.queue.append(queued)
                    return true
                }
                if accepted {
                    wakeUp.signal()
                } else {
                    continuation.resume(returning: .failure(SQLError(.closed, message: "the connection is closed")))
                }
            }
        } onCancel: {
            state.withLock { s in
                if let running = s.running, running.id == id {
                    running.interrupt?()
                } else if let index = s.queue.firstIndex(where: { $0.id == id }), s.queue[index].interrupt != nil {
                    s.queue[index].cancelled = true
                }
            }
        }
        return try result.get()
    }

    /// Whether the caller runs on this connection's thread (a task that prefers it as its executor).
    var isCurrent: Bool {
        let id = threadID.load(ordering: .relaxed)
        return id != 0 && id == Self.currentThreadNumber()
    }

    /// This thread's `pthread_t` as a number: an integer on Linux, a pointer on Darwin.
    private static func currentThreadNumber() -> UInt {
        #if canImport(Darwin)
            UInt(bitPattern: pthread_self())
        #else
            UInt(pthread_self())
        #endif
    }

    /// `body` run now, on the thread the caller already runs on. No cancellation
    /// handler is armed (it would cost two executor switches per call): the owner
    /// watches the running task itself (``SQLiteHandle/watchingCancellation(_:)``).
    private func runInPlace<T: Sendable>(
        interrupt: (@Sendable () -> Void)?, _ body: () throws(SQLError) -> T
    ) throws(SQLError) -> T {
        if interrupt != nil, Task.isCancelled { throw SQLError(.cancelled, message: "cancelled before it started") }
        return try body()
    }

    /// Runs a job of a task that prefers this thread as its executor; after
    /// ``shutdown()``, hands it to the global executor instead.
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = state.withLock { s -> Bool in
            guard !s.stopping else { return false }
            s.nextID &+= 1
            s.queue.append(Job(id: s.nextID, interrupt: nil) { _ in job.runSynchronously(on: self.asUnownedTaskExecutor()) })
            return true
        }
        if accepted {
            wakeUp.signal()
        } else {
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        }
    }

    /// Queues `work` without waiting for it (for cleanup from `deinit`);
    /// returns `false` when the thread is already shutting down.
    @discardableResult
    func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        let accepted = state.withLock { s -> Bool in
            guard !s.stopping else { return false }
            s.nextID &+= 1
            s.queue.append(Job(id: s.nextID, interrupt: nil) { _ in work() })
            return true
        }
        if accepted { wakeUp.signal() }
        return accepted
    }

    /// Lets the queued jobs finish, then ends the thread without waiting for
    /// it; later calls to ``run(interrupt:_:)`` fail with `SQLError.Code.closed`.
    /// Safe to call more than once and from any thread, the thread itself included.
    func shutdown() {
        let first = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return !s.stopping
        }
        if first { wakeUp.signal() }
    }

    private func loop() {
        threadID.store(Self.currentThreadNumber(), ordering: .relaxed)
        while true {
            wakeUp.wait()
            let next = state.withLock { s -> Job? in
                guard !s.queue.isEmpty else { return nil }
                let job = s.queue.removeFirst()
                s.running = RunningJob(id: job.id, interrupt: job.interrupt)
                return job
            }
            guard let job = next else {
                if state.withLock({ $0.stopping && $0.queue.isEmpty }) { return }
                continue
            }
            job.work(job.cancelled)
            state.withLock { $0.running = nil }
        }
    }
}

import ConnectionKit
import NIOCore

/// A Swift task executor that runs jobs on one SwiftNIO event loop.
///
/// A task that prefers the executor of a client whose connections share one
/// event loop (`RedisPool.taskExecutor`, `MemcachedClient.taskExecutor`) runs
/// on the thread that owns the sockets: a request is written without handing
/// it to another thread, and the reply resumes the task on the same thread,
/// without waking one. Two thread switches per request are saved, which on a
/// busy machine is most of a small request's cost.
///
/// Jobs are queued here and run in batches: the replies of one read resume
/// many tasks, and they all run in one event-loop task instead of one each.
///
/// Only for code that does not block: a blocking call in such a task stalls
/// every connection on that loop.
///
/// ```swift
/// try await withTaskExecutorPreference(pool.taskExecutor) {
///     for key in keys { _ = try await pool.get(key) }
/// }
/// ```
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The event loop the jobs run on.
    public let eventLoop: any EventLoop
    private let queue = Locked(JobQueue())

    private struct JobQueue: Sendable {
        var jobs: [UnownedJob] = []
        var drainScheduled = false
    }

    /// An executor for `eventLoop`.
    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Queues `job`; the first job of a batch schedules the loop task that runs them all.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let first = queue.withLock { queue -> Bool in
            queue.jobs.append(job)
            defer { queue.drainScheduled = true }
            return !queue.drainScheduled
        }
        if first { eventLoop.execute { self.runQueuedJobs() } }
    }

    /// Runs the jobs queued so far, in order; jobs they enqueue wait for the next batch,
    /// so other event-loop work (reads, flushes) is not starved.
    private func runQueuedJobs() {
        let batch = queue.withLock { queue -> [UnownedJob] in
            queue.drainScheduled = false
            defer { queue.jobs = [] }
            return queue.jobs
        }
        let executor = asUnownedTaskExecutor()
        for job in batch { job.runSynchronously(on: executor) }
    }
}

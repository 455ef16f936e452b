import NIOCore

/// A Swift task executor that runs jobs on one SwiftNIO event loop.
///
/// A task that prefers the executor of a ``RedisPool`` (``RedisPool/taskExecutor``)
/// runs on the thread that owns the pool's sockets: a command is written
/// without handing it to another thread, and the reply resumes the task on
/// the same thread, without waking one. Two thread switches per command are
/// saved, which on a busy machine is most of a small command's cost.
///
/// Only for code that does not block: a blocking call in such a task stalls
/// every connection of the pool.
///
/// ```swift
/// try await withTaskExecutorPreference(pool.taskExecutor) {
///     for key in keys { _ = try await pool.get(key) }
/// }
/// ```
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The event loop the jobs run on.
    public let eventLoop: any EventLoop

    /// An executor for `eventLoop`.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `job` on the event loop; from the loop itself it is queued without a wake-up.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

import ConnectionKit
import Dispatch
import Foundation

/// A few threads, shared by the process, for the blocking calls that a
/// non-blocking client still has to make: a host name lookup, libpq's
/// `PQcancel`, the short connection that sends MariaDB's `KILL QUERY`.
///
/// Such calls must not run on Swift's cooperative pool (two threads on a
/// two-core machine) nor on the ``SocketReactor``'s thread; a thread each would
/// let a storm of cancellations start hundreds. Here at most `maxThreads`
/// run at once, started on demand and kept; further calls queue in order.
package final class BlockingCallThreads: Sendable {
    private struct State {
        var queue: [@Sendable () -> Void] = []
        var threads = 0
        var idle = 0
    }

    /// The process's shared threads (at most 4).
    package static let shared = BlockingCallThreads(maxThreads: 4, name: "clustersql-blocking")

    private let state = Locked(State())
    private let queued = DispatchSemaphore(value: 0)
    private let maxThreads: Int
    private let name: String

    /// Threads named `name`, at most `maxThreads` of them.
    package init(maxThreads: Int, name: String) {
        self.maxThreads = max(1, maxThreads)
        self.name = name
    }

    /// Queues `work` and returns at once.
    package func submit(_ work: @escaping @Sendable () -> Void) {
        let startThread = state.withLock { s -> Bool in
            s.queue.append(work)
            guard s.queue.count > s.idle, s.threads < maxThreads else { return false }
            s.threads += 1
            return true
        }
        queued.signal()
        if startThread {
            let thread = Thread { [self] in self.serve() }
            thread.name = name
            thread.start()
        }
    }

    /// Runs `work` on one of the threads and returns its result; the caller
    /// is suspended, not blocked. The work runs to its end even if the task is cancelled.
    package func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<T, Never>) in
            submit { continuation.resume(returning: work()) }
        }
    }

    private func serve() {
        while true {
            state.withLock { $0.idle += 1 }
            queued.wait()
            let work = state.withLock { s -> (@Sendable () -> Void)? in
                s.idle -= 1
                return s.queue.isEmpty ? nil : s.queue.removeFirst()
            }
            work?()
        }
    }
}

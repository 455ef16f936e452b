import ConnectionKit
import Dispatch
import Foundation
import SQLCore
import TestSupport
import Testing

@testable import SQLiteBackend

@Suite("ConnectionThread", .timeLimit(.minutes(2)))
struct ConnectionThreadTests {
    @Test("jobs run in submission order on one thread that is not the caller's")
    func order() async throws {
        let thread = ConnectionThread(name: "test-order")
        defer { thread.shutdown() }
        let log = Locked<[Int]>([])
        let caller = pthread_self()
        for i in 0..<50 {
            try await thread.run(interrupt: {}) {
                log.withLock { $0.append(i) }
                #expect(pthread_equal(pthread_self(), caller) == 0)
            }
        }
        #expect(log.withLock { $0 } == Array(0..<50))
    }

    @Test("errors thrown on the thread reach the caller")
    func errors() async {
        let thread = ConnectionThread(name: "test-errors")
        defer { thread.shutdown() }
        do {
            try await thread.run(interrupt: nil) { () throws(SQLError) in throw SQLError(.busy, message: "locked") }
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .busy)
        }
    }

    @Test("cancellation calls interrupt only for the running job; after shutdown calls fail with .closed")
    func interruptAndShutdown() async throws {
        let thread = ConnectionThread(name: "test-cancel")
        let release = DispatchSemaphore(value: 0)
        let interrupted = Locked(0)
        let started = Locked(false)
        let task = Task {
            try await thread.run(interrupt: {
                interrupted.withLock { $0 += 1 }
                release.signal()
            }) {
                started.withLock { $0 = true }
                release.wait()
            }
        }
        try await waitUntil("the job runs") { started.withLock { $0 } }
        task.cancel()
        try await task.value
        #expect(interrupted.withLock { $0 } == 1)
        thread.shutdown()
        thread.shutdown()
        do {
            try await thread.run(interrupt: nil) {}
            Issue.record("expected .closed")
        } catch {
            #expect(error.code == .closed)
        }
    }
}

import ConnectionKit
import Foundation
import TestSupport
import Testing

@testable import SocketReactor

/// The reactor on real sockets (a Unix socket pair): readiness, deadlines,
/// cancellation, and tasks that run on its thread.
@Suite("SocketReactor", .timeLimit(.minutes(1)))
struct SocketReactorTests {
    /// A connected pair of non-blocking stream sockets, closed at the end.
    final class SocketPair: Sendable {
        let a: Int32
        let b: Int32
        init() {
            var fds: [Int32] = [0, 0]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            a = fds[0]
            b = fds[1]
        }
        func send(_ byte: UInt8 = 1) {
            var byte = byte
            _ = write(b, &byte, 1)
        }
        deinit {
            close(a)
            close(b)
        }
    }

    let reactor = SocketReactor.shared

    @Test("a socket with data wakes its waiter; a writable one at once")
    func readiness() async throws {
        let pair = SocketPair()
        try await reactor.wait(for: pair.a, .writable, until: nil)
        let waiting = Task { try await reactor.wait(for: pair.a, .readable, until: .now + .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        pair.send()
        try await waiting.value
    }

    @Test("a deadline ends the wait with timedOut, even one earlier than the reactor's sleep")
    func deadline() async throws {
        let long = SocketPair()
        let short = SocketPair()
        // The reactor sleeps towards the 10 s deadline; the 100 ms one must wake it.
        let longWait = Task { try await reactor.wait(for: long.a, .readable, until: .now + .seconds(10)) }
        try await Task.sleep(for: .milliseconds(20))
        let started = ContinuousClock.now
        await #expect(throws: SocketReactor.WaitError.timedOut) {
            try await reactor.wait(for: short.a, .readable, until: .now + .milliseconds(100))
        }
        let waited = started.duration(to: .now)
        #expect(waited >= .milliseconds(100) && waited < .seconds(2))
        long.send()
        try await longWait.value
    }

    @Test("cancelling a cancellable wait ends it; an uncancellable one waits for the socket")
    func cancellation() async throws {
        let pair = SocketPair()
        let cancellable = Task { try await reactor.wait(for: pair.a, .readable, until: nil) }
        try await Task.sleep(for: .milliseconds(20))
        cancellable.cancel()
        await #expect(throws: SocketReactor.WaitError.cancelled) { try await cancellable.value }

        let stubborn = Task { try await reactor.wait(for: pair.a, .readable, until: .now + .seconds(10), cancellable: false) }
        try await Task.sleep(for: .milliseconds(20))
        stubborn.cancel()
        try await Task.sleep(for: .milliseconds(50))
        pair.send()
        try await stubborn.value
    }

    @Test("a second waiter on the same socket is refused with busy")
    func busy() async throws {
        let pair = SocketPair()
        let first = Task { try await reactor.wait(for: pair.a, .readable, until: .now + .seconds(10)) }
        try await Task.sleep(for: .milliseconds(20))
        await #expect(throws: SocketReactor.WaitError.busy) { try await reactor.wait(for: pair.a, .readable, until: nil) }
        pair.send()
        try await first.value
    }

    @Test("a socket that cannot be watched (none, or not open) counts as ready instead of hanging")
    func unwatchableSocket() async throws {
        // Not a closed pair: tests run in parallel, and another test's socket could take the number.
        for fd: Int32 in [-1, 1_000_000] {
            try await reactor.wait(for: fd, .readable, until: .now + .seconds(5))
        }
    }

    @Test("a task preferring the reactor runs on its thread, before and after a wait, and many interleave")
    func executor() async throws {
        let pairs = (0..<8).map { _ in SocketPair() }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for pair in pairs {
                group.addTask(executorPreference: reactor) {
                    var onThread = reactor.isCurrent
                    for _ in 0..<50 {
                        let wait = Task(executorPreference: reactor) {
                            try await reactor.wait(for: pair.a, .readable, until: .now + .seconds(10))
                        }
                        pair.send()
                        try await wait.value
                        var byte: UInt8 = 0
                        _ = read(pair.a, &byte, 1)
                        onThread = onThread && reactor.isCurrent
                    }
                    return onThread
                }
            }
            for try await onThread in group { #expect(onThread) }
        }
        #expect(!reactor.isCurrent)
    }

    @Test("blocking calls run off the pool, at most maxThreads at once, all of them")
    func blockingCalls() async throws {
        let threads = BlockingCallThreads(maxThreads: 2, name: "test-blocking")
        // A pthread-mutex lock, which ThreadSanitizer understands (Synchronization's Mutex it does not).
        final class Peak: Sendable {
            let counts = Locked((running: 0, most: 0))
        }
        let peak = Peak()
        let results = await withTaskGroup(of: Int.self) { group in
            for i in 0..<10 {
                group.addTask {
                    await threads.run {
                        peak.counts.withLock { c in
                            c.running += 1
                            c.most = max(c.most, c.running)
                        }
                        usleep(10_000)
                        peak.counts.withLock { $0.running -= 1 }
                        return i
                    }
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(results.sorted() == Array(0..<10))
        #expect(peak.counts.withLock { $0.most } <= 2)
    }

    @Test("host names resolve off the pool to every address; numeric ones without a lookup; unknown ones fail with the resolver's reason")
    func resolver() async throws {
        #expect(try await HostResolver.resolve("127.0.0.1") == ["127.0.0.1"])
        #expect(try await HostResolver.resolve("::1") == ["::1"])
        let localhost = try await HostResolver.resolve("localhost", until: .now + .seconds(5))
        #expect(localhost.contains("127.0.0.1") || localhost.contains("::1"))
        #expect(!HostResolver.needsLookup("localhost") && !HostResolver.needsLookup("10.1.2.3") && HostResolver.needsLookup("db.example"))
        do {
            _ = try await HostResolver.resolve("no-such-host.invalid", until: .now + .seconds(10))
            Issue.record("an unknown name resolved")
        } catch {
            #expect(error.kind == .unresolved || error.kind == .timedOut)
        }
        let cancelled = Task { try await HostResolver.resolve("cancelled-lookup.invalid") }
        cancelled.cancel()
        do {
            _ = try await cancelled.value
            Issue.record("a cancelled lookup resolved")
        } catch let error as HostResolver.Failure {
            #expect(error.kind == .cancelled || error.kind == .unresolved)
        }
    }

    @Test("the poller: epoll on Linux, poll(2) when CLUSTERSQL_SOCKET_POLLER=poll (the pass that runs what a Mac runs)")
    func pollerChoice() {
        let forced = ProcessInfo.processInfo.environment["CLUSTERSQL_SOCKET_POLLER"] == "poll"
        #expect(reactor.pollerName == (forced ? "poll" : "epoll"))
    }

    @Test("poll(2): readiness, a deadline earlier than the reactor's sleep, cancellation, busy, and tasks on its threads")
    func pollPoller() async throws {
        let reactor = SocketReactor(name: "poll-reactor", threads: 2, poller: PollReadinessPoller())
        #expect(reactor.pollerName == "poll")
        let pair = SocketPair()
        try await reactor.wait(for: pair.a, .writable, until: nil)
        let waiting = Task { try await reactor.wait(for: pair.a, .readable, until: .now + .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        await #expect(throws: SocketReactor.WaitError.busy) { try await reactor.wait(for: pair.a, .readable, until: nil) }
        pair.send()
        try await waiting.value

        let silent = SocketPair()
        let started = ContinuousClock.now
        await #expect(throws: SocketReactor.WaitError.timedOut) {
            try await reactor.wait(for: silent.a, .readable, until: .now + .milliseconds(100))
        }
        // Stretched under the sanitizers: ThreadSanitizer's loaded pass once took more than 2 s.
        #expect(started.duration(to: .now) >= .milliseconds(100) && started.duration(to: .now) < TestTiming.bound(.seconds(2)))

        let cancellable = Task { try await reactor.wait(for: silent.a, .readable, until: nil) }
        try await Task.sleep(for: .milliseconds(20))
        cancellable.cancel()
        await #expect(throws: SocketReactor.WaitError.cancelled) { try await cancellable.value }

        // Many sockets at once, each woken by its own data.
        let pairs = (0..<50).map { _ in SocketPair() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for pair in pairs { group.addTask { try await reactor.wait(for: pair.a, .readable, until: .now + .seconds(10)) } }
            try await Task.sleep(for: .milliseconds(50))
            for pair in pairs { pair.send() }
            try await group.waitForAll()
        }
        #expect(await withTaskExecutorPreference(reactor) { reactor.isCurrent })
    }
}

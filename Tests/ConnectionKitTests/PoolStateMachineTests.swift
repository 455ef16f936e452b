import Testing

@testable import ConnectionKit

/// Drives a `PoolStateMachine` with explicit instants: every option and transition, no sleeps.
@Suite("Pool state machine", .timeLimit(.minutes(2)))
struct PoolStateMachineTests {
    typealias Instant = ManualClock.Instant
    typealias Machine = PoolStateMachine<String, Instant>
    typealias Entry = Machine.Entry

    static func at(_ ms: Int) -> Instant { Instant(offset: .milliseconds(ms)) }

    /// A small harness: borrow, dial, release, with the bookkeeping a shell does.
    struct Harness {
        var machine: Machine
        var dialed = 0
        var closed: [(String, CloseReason)] = []

        init(_ configure: (inout ConnectionPoolConfiguration) -> Void = { _ in }) {
            var config = ConnectionPoolConfiguration(name: "test", idleSize: 2)
            config.pingInterval = .disabled
            configure(&config)
            machine = Machine(configuration: config, now: PoolStateMachineTests.at(0), seed: 42)
        }

        /// Borrows; when told to create, dials "c<n>" at once.
        mutating func borrow(at ms: Int, canWait: Bool = true) -> Machine.BorrowDecision {
            var closing: [(entry: Entry, reason: CloseReason)] = []
            let decision = machine.borrow(now: at(ms), canWait: canWait, closing: &closing)
            closed += closing.map { ($0.entry.connection, $0.reason) }
            return decision
        }

        /// Borrows and expects a connection (idle or freshly dialed).
        mutating func take(at ms: Int) -> Entry? {
            switch borrow(at: ms) {
            case .use(let entry): return entry
            case .create: return dial(at: ms)
            default: return nil
            }
        }

        /// Borrows and requires a connection.
        mutating func must(at ms: Int) throws -> Entry {
            try #require(take(at: ms))
        }

        mutating func dial(at ms: Int) -> Entry {
            dialed += 1
            let (entry, actions) = machine.dialSucceeded("c\(dialed)", forCaller: true, now: at(ms))
            record(actions)
            return entry
        }

        mutating func release(_ entry: Entry, at ms: Int, broken: Bool = false) -> Machine.Actions {
            let actions = machine.release(entry, broken: broken, now: at(ms))
            record(actions)
            return actions
        }

        mutating func tick(at ms: Int) -> (actions: Machine.Actions, next: Instant?) {
            let result = machine.tick(now: at(ms))
            record(result.actions)
            return result
        }

        mutating func record(_ actions: Machine.Actions) {
            closed += actions.close.map { ($0.entry.connection, $0.reason) }
        }

        func at(_ ms: Int) -> Instant { PoolStateMachineTests.at(ms) }
    }

    @Test("a release into an empty idle list wakes the timer loop only for a timer earlier than its sleep")
    func wakeOnlyForEarlierTimers() throws {
        var h = Harness { $0.pingInterval = .automatic }  // idleSize 2 → a ping every 5 s
        var woken = h.machine.takeWakeRequest()
        #expect(woken == false)
        let a = try h.must(at: 0)
        _ = h.release(a, at: 1)
        woken = h.machine.takeWakeRequest()
        #expect(woken, "before the loop's first tick every new timer wakes it")
        let (_, next) = h.tick(at: 2)
        #expect(next == h.at(5_000))
        for ms in stride(from: 10, to: 1000, by: 10) {  // busy: the idle list empties and refills
            let c = try h.must(at: ms)
            _ = h.release(c, at: ms + 5)
            woken = h.machine.takeWakeRequest()
            #expect(woken == false, "the loop already wakes for the ping at 5 s")
        }
        var idleTimed = Harness {
            $0.pingInterval = .automatic
            $0.maxIdleTime = .milliseconds(100)
        }
        let b = try idleTimed.must(at: 0)
        _ = idleTimed.tick(at: 0)  // nothing idle: the loop sleeps until the next ping
        _ = idleTimed.release(b, at: 10)
        woken = idleTimed.machine.takeWakeRequest()
        #expect(woken, "idle time ends at 110 ms, before the loop's wake")
    }

    @Test("on-demand creation, then reuse of the idle connection (LIFO)")
    func onDemandAndReuse() throws {
        var h = Harness()
        let a = try h.must(at: 0)
        let b = try h.must(at: 0)
        #expect(h.dialed == 2)
        _ = h.release(a, at: 1)
        _ = h.release(b, at: 2)
        #expect(h.machine.available == 2)
        let again = try h.must(at: 3)
        #expect(again.connection == "c2")  // the most recently returned
        #expect(h.dialed == 2)
    }

    @Test("returned connections beyond idleSize are closed without an overflow buffer")
    func idleSizeBound() throws {
        var h = Harness()
        let entries = (0..<3).compactMap { _ in h.take(at: 0) }
        for e in entries { _ = h.release(e, at: 1) }
        #expect(h.machine.available == 2)
        #expect(h.closed.map(\.1) == [.overflow])
        #expect(h.machine.stats.closed["overflow"] == 1)
    }

    @Test("the overflow buffer keeps extra connections and drains one per interval")
    func overflowDrain() throws {
        var h = Harness { $0.overflow = OverflowBuffer(size: 2, drainInterval: .milliseconds(100)) }
        let entries = (0..<5).compactMap { _ in h.take(at: 0) }
        for e in entries { _ = h.release(e, at: 10) }
        #expect(h.machine.available == 4)  // 2 idle + 2 overflow
        #expect(h.closed.count == 1)  // the fifth had no room
        let first = h.tick(at: 50)
        #expect(first.actions.close.isEmpty)
        #expect(first.next == h.at(110))
        let v1 = h.tick(at: 110)
        #expect(v1.actions.close.count == 1)
        let v2 = h.tick(at: 150)
        #expect(v2.actions.close.isEmpty)
        let last = h.tick(at: 210)
        #expect(last.actions.close.count == 1)
        #expect(h.machine.available == 2)
        #expect(last.next == nil)
    }

    @Test("maxOpen caps open connections; waiters are served in FIFO order on release")
    func maxOpenFIFO() throws {
        var h = Harness { $0.maxOpen = 2 }
        let a = try h.must(at: 0)
        _ = try h.must(at: 0)
        guard case .wait(let first) = h.borrow(at: 1), case .wait(let second) = h.borrow(at: 2) else {
            Issue.record("expected two waiters")
            return
        }
        #expect(h.machine.stats.waiting == 2)
        let actions = h.release(a, at: 5)
        #expect(actions.resume.count == 1)
        #expect(actions.resume.first?.waiter == first)
        guard case .connection(let handed)? = actions.resume.first?.result else {
            Issue.record("expected a hand-off")
            return
        }
        #expect(handed.connection == "c1")
        #expect(h.machine.stats.waiting == 1)
        let v3 = h.machine.cancelWaiter(second)
        #expect(v3)
        let v4 = h.machine.cancelWaiter(second)
        #expect(!v4)
        #expect(h.machine.stats.waiting == 0)
        #expect(h.machine.stats.waitDuration == .milliseconds(4))
    }

    @Test("a broken connection is dropped on return and its slot lets a waiter dial")
    func brokenFreesCapacity() throws {
        var h = Harness { $0.maxOpen = 1 }
        let a = try h.must(at: 0)
        guard case .wait(let waiter) = h.borrow(at: 1) else {
            Issue.record("expected a wait")
            return
        }
        let actions = h.release(a, at: 2, broken: true)
        #expect(h.closed.map(\.1) == [.broken])
        #expect(actions.resume.count == 1)
        guard case .create? = actions.resume.first?.result else {
            Issue.record("expected create permission")
            return
        }
        #expect(actions.resume.first?.waiter == waiter)
        #expect(h.machine.available == 0)
    }

    @Test("a failed dial gives its reserved slot to the next waiter")
    func dialFailure() {
        var h = Harness { $0.maxOpen = 1 }
        guard case .create = h.borrow(at: 0), case .wait = h.borrow(at: 0) else {
            Issue.record("setup")
            return
        }
        let actions = h.machine.dialFailed(forCaller: true, now: h.at(1))
        guard case .create? = actions.resume.first?.result else {
            Issue.record("expected create permission")
            return
        }
        #expect(h.machine.stats.opening == 1)
    }

    @Test("CreateLimit: headroom is there at start, then one creation per interval; interval 0 disables it")
    func createLimit() throws {
        var h = Harness {
            $0.createLimit = CreateLimit(headroom: 2, interval: .milliseconds(100))
            $0.getTimeout = .seconds(5)
        }
        _ = try h.must(at: 0)
        _ = try h.must(at: 0)
        guard case .wait(let waiter) = h.borrow(at: 10) else {
            Issue.record("expected to wait for a token")
            return
        }
        let early = h.tick(at: 50)
        #expect(early.actions.resume.isEmpty)
        #expect(early.next == h.at(100))
        let refill = h.tick(at: 100)
        #expect(refill.actions.resume.map(\.waiter) == [waiter])
        guard case .create? = refill.actions.resume.first?.result else {
            Issue.record("expected create")
            return
        }

        var unlimited = Harness { $0.createLimit = CreateLimit(headroom: 1, interval: .zero) }
        for _ in 0..<5 { #expect(unlimited.take(at: 0) != nil) }
    }

    @Test("GetTimeout bounds the wait and the error gives the pool's figures")
    func getTimeout() throws {
        var h = Harness {
            $0.maxOpen = 1
            $0.getTimeout = .milliseconds(250)
        }
        _ = try h.must(at: 0)
        guard case .wait(let waiter) = h.borrow(at: 100) else {
            Issue.record("expected a wait")
            return
        }
        let v5 = h.tick(at: 200)
        #expect(v5.next == h.at(350))
        let timeout = h.tick(at: 350)
        #expect(timeout.actions.resume.first?.waiter == waiter)
        guard case .failure(let error)? = timeout.actions.resume.first?.result else {
            Issue.record("expected failure")
            return
        }
        #expect(error.code == .poolTimeout)
        #expect(error.description == "test: poolTimeout: no connection within 250 ms (in use 1, idle 0, opening 0, waiting 0, cap 1)")
        #expect(h.machine.stats.timeouts == 1)
    }

    @Test("without the timer loop a borrow that must wait fails at once")
    func notRunning() throws {
        var h = Harness { $0.maxOpen = 1 }
        _ = try h.must(at: 0)
        guard case .fail(let error) = h.borrow(at: 1, canWait: false) else {
            Issue.record("expected failure")
            return
        }
        #expect(error.code == .notRunning)
    }

    @Test("PingInterval: automatic is 10 s / size, pings rotate from the least recently used, a failed ping closes")
    func pings() throws {
        var h = Harness { $0.pingInterval = .automatic }  // idleSize 2 → every 5 s
        let a = try h.must(at: 0)
        let b = try h.must(at: 0)
        _ = h.release(a, at: 1)
        _ = h.release(b, at: 2)
        let v6 = h.tick(at: 100)
        #expect(v6.next == h.at(5000))
        let first = h.tick(at: 5000)
        #expect(first.actions.ping.map(\.connection) == ["c1"])
        #expect(h.machine.available == 1)
        _ = h.machine.pingFinished(first.actions.ping[0], ok: true, now: h.at(5001))
        let second = h.tick(at: 10_000)
        #expect(second.actions.ping.map(\.connection) == ["c2"])
        let failed = h.machine.pingFinished(second.actions.ping[0], ok: false, now: h.at(10_001))
        #expect(failed.close.map(\.reason) == [.broken])
        #expect(h.machine.available == 1)

        var off = Harness { $0.pingInterval = .disabled }
        let c = try off.must(at: 0)
        _ = off.release(c, at: 1)
        let v7 = off.tick(at: 60_000)
        #expect(v7.actions.ping.isEmpty)
    }

    @Test("maxLifetime (with jitter): expired connections are never handed out and close on return")
    func maxLifetime() throws {
        var h = Harness {
            $0.maxLifetime = .seconds(10)
            $0.lifetimeJitter = 0.1
        }
        let a = try h.must(at: 0)
        let expiry = try #require(a.expiresAt)
        #expect(expiry >= h.at(9000) && expiry <= h.at(11_000))
        _ = h.release(a, at: 1)
        let v8 = h.tick(at: 2)
        #expect(v8.next == expiry)
        let later = try h.must(at: 11_001)
        #expect(later.connection == "c2")
        #expect(h.closed.map(\.1) == [.maxLifetime])
        let old = try h.must(at: 11_001)
        _ = h.release(old, at: 30_000)
        #expect(h.closed.map(\.1) == [.maxLifetime, .maxLifetime])
    }

    @Test("maxIdleTime reaps idle connections but keeps minIdle of them")
    func maxIdleTime() throws {
        var h = Harness {
            $0.idleSize = 3
            $0.maxIdleTime = .seconds(1)
            $0.minIdle = 1
        }
        let entries = (0..<3).compactMap { _ in h.take(at: 0) }
        for (i, e) in entries.enumerated() { _ = h.release(e, at: 10 * i) }
        let reaped = h.tick(at: 1015)
        #expect(reaped.actions.close.map(\.reason) == [.maxIdleTime, .maxIdleTime])
        #expect(h.machine.available == 1)
        let v9 = h.tick(at: 5000)
        #expect(v9.actions.close.isEmpty)
    }

    @Test("minIdle warm-up opens one connection per warm-up interval in the background")
    func warmUp() throws {
        var h = Harness {
            $0.minIdle = 2
            $0.warmUpInterval = .milliseconds(50)
        }
        let first = h.tick(at: 0)
        #expect(first.actions.dials == 1)
        #expect(first.next == h.at(50))
        let v10 = h.tick(at: 10)
        #expect(v10.actions.dials == 0)
        let v11 = h.tick(at: 50)
        #expect(v11.actions.dials == 1)
        _ = h.machine.dialSucceeded("w1", forCaller: false, now: h.at(60))
        _ = h.machine.dialSucceeded("w2", forCaller: false, now: h.at(70))
        #expect(h.machine.available == 2)
        let v12 = h.tick(at: 200)
        #expect(v12.actions.dials == 0)
    }

    @Test("a borrow or a close that leaves fewer than minIdle wakes the sleeping loop for a warm-up dial; a failed dial does not")
    func warmUpAfterBorrowAndClose() throws {
        var woken = false
        var dials = 0
        var h = Harness {
            $0.minIdle = 2
            $0.warmUpInterval = .milliseconds(50)
        }
        _ = h.tick(at: 0)
        _ = h.machine.dialSucceeded("w1", forCaller: false, now: h.at(1))
        _ = h.tick(at: 50)
        _ = h.machine.dialSucceeded("w2", forCaller: false, now: h.at(51))
        let warm = h.tick(at: 100)
        #expect(warm.actions.dials == 0 && warm.next == nil)  // the loop sleeps until woken
        _ = h.machine.takeWakeRequest()
        let borrowed = try h.must(at: 200)
        woken = h.machine.takeWakeRequest()
        #expect(woken)
        dials = h.tick(at: 200).actions.dials
        #expect(dials == 1)
        _ = h.machine.dialSucceeded("w3", forCaller: false, now: h.at(210))
        let sleeps300 = h.tick(at: 300).next
        #expect(sleeps300 == nil)
        _ = h.machine.takeWakeRequest()
        _ = h.release(borrowed, at: 400, broken: true)
        #expect(h.machine.available == 2)
        woken = h.machine.takeWakeRequest()
        #expect(!woken, "two idle: enough")
        let again = try h.must(at: 500)
        woken = h.machine.takeWakeRequest()
        #expect(woken)
        dials = h.tick(at: 500).actions.dials
        #expect(dials == 1)
        _ = h.machine.dialFailed(forCaller: false, now: h.at(510))
        woken = h.machine.takeWakeRequest()
        #expect(!woken, "a server that is down is not dialed again at once")
        _ = h.release(again, at: 600, broken: true)
        woken = h.machine.takeWakeRequest()
        #expect(woken)
    }

    @Test("shutdown fails every waiter, closes idle connections, and closes borrowed ones when returned")
    func shutdown() throws {
        var h = Harness { $0.maxOpen = 2 }
        let a = try h.must(at: 0)
        let b = try h.must(at: 0)
        _ = h.release(b, at: 1)
        _ = h.take(at: 1)  // takes b again
        guard case .wait = h.borrow(at: 2) else {
            Issue.record("expected a wait")
            return
        }
        let actions = h.machine.shutdown()
        #expect(actions.resume.count == 1)
        guard case .failure(let error)? = actions.resume.first?.result else {
            Issue.record("expected failure")
            return
        }
        #expect(error.code == .shutdown)
        #expect(h.machine.shutdown().isEmpty)  // twice is safe
        _ = h.release(a, at: 3)
        #expect(h.closed.last?.1 == .shutdown)
        guard case .fail = h.borrow(at: 4) else {
            Issue.record("expected failure after shutdown")
            return
        }
    }

    @Test("empty closes idle connections, twice safely, and the pool stays usable")
    func empty() throws {
        var h = Harness()
        let a = try h.must(at: 0)
        _ = h.release(a, at: 1)
        let v13 = h.machine.empty()
        #expect(v13.close.map(\.reason) == [.emptied])
        let v14 = h.machine.empty()
        #expect(v14.isEmpty)
        let v15 = h.take(at: 2)
        #expect(v15?.connection == "c2")
    }

    @Test("statistics follow the pool")
    func statistics() throws {
        var h = Harness { $0.maxOpen = 3 }
        let a = try h.must(at: 0)
        _ = try h.must(at: 0)
        _ = h.release(a, at: 1)
        let stats = h.machine.stats
        #expect(stats.open == 2 && stats.inUse == 1 && stats.idle == 1 && stats.opened == 2 && stats.waiting == 0)
    }
}

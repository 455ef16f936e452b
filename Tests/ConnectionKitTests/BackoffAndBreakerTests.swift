import Synchronization
import TestSupport
import Testing

@testable import ConnectionKit

@Suite("Backoff", .timeLimit(.minutes(2)))
struct BackoffTests {
    @Test("the same seed gives the same sequence; another seed another one")
    func deterministic() {
        var a = Backoff(policy: .standard, seed: 7)
        var b = Backoff(policy: .standard, seed: 7)
        var c = Backoff(policy: .standard, seed: 8)
        let first = (0..<10).map { _ in a.next() }
        let second = (0..<10).map { _ in b.next() }
        let other = (0..<10).map { _ in c.next() }
        #expect(first == second)
        #expect(first != other)
    }

    @Test("exponential growth within the jitter band, capped, and reset on success")
    func growthAndCap() {
        let policy = BackoffPolicy(initial: .milliseconds(100), multiplier: 2, maximum: .seconds(1), jitter: 0.2)
        var backoff = Backoff(policy: policy, seed: 1)
        let expectedBases: [Double] = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
        for base in expectedBases {
            let d = backoff.next()
            #expect(d >= .seconds(base * 0.8) - .nanoseconds(1) && d <= min(.seconds(base * 1.2), .seconds(1)) + .nanoseconds(1))
        }
        #expect(backoff.attempts == 6)
        backoff.reset()
        #expect(backoff.attempts == 0)
        let again = backoff.next()
        #expect(again <= .milliseconds(120) && again >= .milliseconds(80))
    }

    @Test("go-kit preset: each delay is 2d·U[0.5,1.5) of the previous, never above 60 s")
    func goKit() {
        var backoff = Backoff(policy: .goKit, seed: 3)
        var previous = Duration.seconds(1)
        for _ in 0..<40 {
            let d = backoff.next()
            #expect(d <= .seconds(60))
            if d < .seconds(60) {
                #expect(d >= previous * 1 - .nanoseconds(2) && d <= previous * 3 + .nanoseconds(2))
            }
            previous = d
        }
        #expect(previous == .seconds(60))
    }

    @Test("no jitter gives exact doubling")
    func exact() {
        var backoff = Backoff(policy: BackoffPolicy(initial: .milliseconds(10), maximum: .seconds(1), jitter: 0), seed: 0)
        let delays = (0..<4).map { _ in backoff.next() }
        #expect(delays == [.milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(80)])
    }

    @Test("a policy past Int64 nanoseconds saturates instead of trapping")
    func saturates() {
        for compounding in [false, true] {
            var backoff = Backoff(
                policy: BackoffPolicy(
                    initial: .seconds(1 << 40), multiplier: .infinity,
                    maximum: .seconds(Int64.max), jitter: 0.5, compounding: compounding), seed: 1)
            let delays = (0..<5).map { _ in backoff.next() }
            #expect(delays.allSatisfy { $0 > .seconds(1 << 33) }, "\(delays)")
        }
    }
}

@Suite("Circuit breaker", .timeLimit(.minutes(2)))
struct CircuitBreakerTests {
    typealias Machine = CircuitBreakerStateMachine<ManualClock.Instant>
    static func at(_ ms: Int) -> ManualClock.Instant { .init(offset: .milliseconds(ms)) }

    var configuration: CircuitBreakerConfiguration {
        var c = CircuitBreakerConfiguration()
        c.failureThreshold = 2.5
        c.halfLife = .seconds(1)
        c.probeBackoff = BackoffPolicy(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)
        return c
    }

    @Test("failures decay: three at once open it, three spread over half-lives do not")
    func decayingWindow() {
        var spread = Machine(configuration: configuration, seed: 1)
        let r1 = spread.recordFailure(now: Self.at(0))
        #expect(r1 == nil)
        #expect(spread.recordFailure(now: Self.at(2000)) == nil)  // the first counts 1/4 now
        let r2 = spread.recordFailure(now: Self.at(4000))
        #expect(r2 == nil)
        #expect(spread.circuitState == .closed)
        #expect(abs(spread.failureScore(at: Self.at(4000)) - (1 + 0.25 + 0.0625)) < 0.001)

        var burst = Machine(configuration: configuration, seed: 1)
        _ = burst.recordFailure(now: Self.at(0))
        _ = burst.recordFailure(now: Self.at(10))
        let r3 = burst.recordFailure(now: Self.at(20))
        #expect(r3 == .opened(nextProbe: Self.at(120)))
        #expect(burst.circuitState == .open)
    }

    @Test("open rejects; the prober probes when due; failure backs off, success closes")
    func probing() {
        var m = Machine(configuration: configuration, seed: 1)
        for t in 0..<3 { _ = m.recordFailure(now: Self.at(t)) }
        let r4 = m.admit(now: Self.at(50), proberRunning: true)
        #expect(r4 == .reject(openSince: Self.at(2)))
        let r5 = m.startProbe(now: Self.at(50))
        #expect(!r5)
        let r6 = m.startProbe(now: Self.at(102))
        #expect(r6)
        #expect(m.circuitState == .halfOpen)
        let r7 = m.admit(now: Self.at(103), proberRunning: true)
        #expect(r7 == .reject(openSince: Self.at(2)))
        let r8 = m.probeFinished(success: false, now: Self.at(110))
        #expect(r8 == .reopened(nextProbe: Self.at(310)))
        let r9 = m.startProbe(now: Self.at(310))
        #expect(r9)
        let r10 = m.probeFinished(success: true, now: Self.at(320))
        #expect(r10 == .closed)
        let r11 = m.admit(now: Self.at(321), proberRunning: true)
        #expect(r11 == .allow)
        #expect(m.failureScore(at: Self.at(321)) == 0)
    }

    @Test("without a prober the first call after the delay is the trial")
    func trialCall() {
        var m = Machine(configuration: configuration, seed: 1)
        for t in 0..<3 { _ = m.recordFailure(now: Self.at(t)) }
        let r12 = m.admit(now: Self.at(50), proberRunning: false)
        #expect(r12 == .reject(openSince: Self.at(2)))
        let r13 = m.admit(now: Self.at(200), proberRunning: false)
        #expect(r13 == .allowTrial)
        let r14 = m.admit(now: Self.at(201), proberRunning: false)
        #expect(r14 == .reject(openSince: Self.at(2)))
    }

    struct Refused: Error, Equatable {}
    struct SyntaxError: Error {}

    @Test("the breaker fails fast in microseconds, ignores statement errors, and its one prober closes it")
    func shell() async throws {
        let clock = ManualClock()
        let healthy = Atomic<Bool>(false)
        let probes = Atomic<Int>(0)
        let breaker = CircuitBreaker(
            name: "node-1", configuration: configuration, clock: clock, seed: 1,
            isFailure: { $0 is Refused },
            probe: {
                probes.add(1, ordering: .relaxed)
                if !healthy.load(ordering: .relaxed) { throw Refused() }
            })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await breaker.run() }
            for _ in 0..<10 {
                let error = await #expect(throws: ManagedFailure<SyntaxError>.self) {
                    try await breaker.call { () throws(SyntaxError) in throw SyntaxError() }
                }
                #expect(error?.failure != nil)
            }
            #expect(breaker.state == .closed)
            for _ in 0..<3 {
                await #expect(throws: ManagedFailure<Refused>.failed(Refused())) {
                    try await breaker.call { () throws(Refused) in throw Refused() }
                }
            }
            #expect(breaker.state == .open)
            let started = ContinuousClock.now
            for _ in 0..<1000 {
                do throws(ManagedFailure<Never>) {
                    _ = try await breaker.call { Issue.record("an open breaker ran the call") }
                } catch {
                    #expect(error.refusal?.code == .circuitOpen)
                }
            }
            let perCall = (ContinuousClock.now - started) / 1000
            #expect(perCall < .microseconds(200), "fail-fast took \(perCall) per call")

            await clock.waitForSleepers()
            clock.advance(by: .milliseconds(100))  // first probe: still down
            try await waitUntil("the first probe ran") { !(probes.load(ordering: .relaxed) < 1) }
            await clock.waitForSleepers()
            #expect(breaker.state == .open)
            healthy.store(true, ordering: .relaxed)
            clock.advance(by: .milliseconds(200))  // second probe: up
            try await waitUntil("the breaker closed") { !(breaker.state != .closed) }
            #expect(probes.load(ordering: .relaxed) == 2)
            #expect(try await breaker.call { 42 } == 42)
            group.cancelAll()
        }
    }
}

@Suite("CircuitBreaker: a prober that starts during a trial call")
struct BreakerProberStartTests {
    struct Refused: Error, Equatable {}

    @Test("a trial call that fails after the prober started still gets the breaker probed, and closed once the dependency is back")
    func proberStartedDuringTrial() async throws {
        var configuration = CircuitBreakerConfiguration()
        configuration.failureThreshold = 1
        configuration.probeBackoff = BackoffPolicy(initial: .milliseconds(100), maximum: .milliseconds(100), jitter: 0)
        let clock = ManualClock()
        let healthy = Atomic<Bool>(false)
        let breaker = CircuitBreaker(
            name: "late-prober", configuration: configuration, clock: clock, seed: 1,
            isFailure: { $0 is Refused },
            probe: { if !healthy.load(ordering: .relaxed) { throw Refused() } })
        await #expect(throws: ManagedFailure<Refused>.failed(Refused())) {
            try await breaker.call { () throws(Refused) in throw Refused() }
        }
        #expect(breaker.state == .open)
        clock.advance(by: .milliseconds(150))  // no prober yet: the next call is the trial
        let releaseTrial = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: ManagedFailure<Refused>.failed(Refused())) {
                    try await breaker.call { () async throws(Refused) in
                        for await _ in releaseTrial.stream {}
                        throw Refused()
                    }
                }
            }
            try await waitUntil("the trial is in flight") { breaker.state == .halfOpen }
            group.addTask { try await breaker.run() }
            try await Task.sleep(for: .milliseconds(100))  // the prober starts while the trial is in flight
            releaseTrial.continuation.finish()
            try await waitUntil("the failed trial reopened the breaker") { breaker.state == .open }
            healthy.store(true, ordering: .relaxed)
            let deadline = ContinuousClock.now + .seconds(5)
            while breaker.state != .closed, ContinuousClock.now < deadline {
                clock.advance(by: .milliseconds(100))
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(breaker.state == .closed, "the prober heard of the reopening and probed")
            group.cancelAll()
        }
    }
}

@Suite("CircuitBreakerStateMachine: an exact sliding window, cleared by a success")
struct SlidingWindowBreakerTests {
    typealias Instant = ManualClock.Instant
    func at(_ milliseconds: Int) -> Instant { Instant(offset: .milliseconds(milliseconds)) }

    @Test("the threshold-th failure within the window opens it; older failures drop out; a success starts the count again")
    func slidingWindow() {
        var configuration = CircuitBreakerConfiguration()
        configuration.failureThreshold = 3
        configuration.slidingWindow = .seconds(1)
        configuration.resetsOnSuccess = true
        var machine = CircuitBreakerStateMachine<Instant>(configuration: configuration, seed: 1)
        #expect(machine.recordFailure(now: at(0)) == nil)
        #expect(machine.recordFailure(now: at(100)) == nil)
        #expect(machine.failureScore(at: at(200)) == 2)
        #expect(machine.recordFailure(now: at(1500)) == nil, "the first two fell out of the window")
        machine.recordSuccess()
        #expect(machine.failureScore(at: at(1600)) == 0)
        #expect(machine.recordFailure(now: at(1700)) == nil)
        #expect(machine.recordFailure(now: at(1710)) == nil)
        guard case .opened = machine.recordFailure(now: at(1720)) else {
            Issue.record("three failures within a second open it")
            return
        }
        #expect(machine.circuitState == .open)
    }
}

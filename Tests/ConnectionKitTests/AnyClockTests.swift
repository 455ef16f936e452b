import ConnectionKit
import Testing

@Suite("AnyClock: one clock type over any clock of Durations")
struct AnyClockTests {
    @Test("over a manual clock: the present follows advance(by:), and a sleeper wakes when its deadline is reached")
    func manual() async throws {
        let manual = ManualClock()
        manual.advance(by: .seconds(5))  // the wrapper's origin is the wrapped clock's present
        let clock = AnyClock(manual)
        #expect(clock.now.offset == .zero)
        manual.advance(by: .milliseconds(250))
        #expect(clock.now.offset == .milliseconds(250))
        let sleeper = Task { try await clock.sleep(until: clock.now.advanced(by: .seconds(1))) }
        for _ in 0..<1_000 where manual.sleeperCount == 0 { await Task.yield() }
        #expect(manual.earliestDeadline == ManualClock.Instant(offset: .milliseconds(6250)))
        manual.advance(by: .seconds(1))
        try await sleeper.value
        #expect(clock.now.offset == .milliseconds(1250))
    }

    @Test("a cancelled sleep throws at once")
    func cancelled() async {
        let manual = ManualClock()
        let clock = AnyClock(manual)
        let sleeper = Task { try await clock.sleep(for: .seconds(3600)) }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
    }

    @Test("over the continuous clock: time moves forward")
    func continuous() async throws {
        let clock = AnyClock.continuous
        let before = clock.now
        try await clock.sleep(for: .milliseconds(5))
        #expect(before.duration(to: clock.now) >= .milliseconds(5))
    }
}

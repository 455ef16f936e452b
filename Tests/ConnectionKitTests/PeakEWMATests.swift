import ConnectionKit
import Testing

@Suite("Peak EWMA: the latency average the balancer reads")
struct PeakEWMATests {
    typealias Instant = ManualClock.Instant
    func at(_ milliseconds: Int) -> Instant { Instant(offset: .milliseconds(milliseconds)) }

    @Test("a slower sample replaces the average at once; faster samples pull it down by the time since the last")
    func peakAndDecay() throws {
        var average = PeakEWMA<Instant>(decay: .seconds(5), minimumSampleWeight: 0)
        #expect(average.estimate(at: at(0)) == nil)
        average.record(.milliseconds(1), at: at(0))
        average.record(.milliseconds(300), at: at(10))
        #expect(average.seconds == 0.3)
        average.record(.milliseconds(1), at: at(20))  // 10 ms later: barely moves
        #expect(try #require(average.seconds) > 0.29)
        average.record(.milliseconds(1), at: at(5_020))  // one decay period later: weight 1/e
        #expect(abs(try #require(average.seconds) - (0.299 * 0.3679 + 0.001)) < 0.002)
    }

    @Test("each faster sample weighs at least the floor, so a single stall is forgotten within a few dozen samples")
    func sampleWeightFloor() throws {
        var average = PeakEWMA<Instant>(decay: .seconds(5))  // floor 0.05
        average.record(.microseconds(300), at: at(0))
        average.record(.milliseconds(20), at: at(1))  // a stall
        average.record(.microseconds(300), at: at(2))
        #expect(abs(try #require(average.seconds) - (0.02 * 0.95 + 0.0003 * 0.05)) < 1e-6)
        for millisecond in 3..<83 { average.record(.microseconds(300), at: at(millisecond)) }
        #expect(try #require(average.seconds) < 0.001)  // 80 samples, 80 ms later: back under 1 ms
    }

    @Test("read while idle, the average decays toward zero, so an avoided node is tried again")
    func idleDecay() throws {
        var average = PeakEWMA<Instant>(decay: .seconds(5))
        average.record(.milliseconds(50), at: at(0))
        #expect(average.estimate(at: at(0)) == 0.05)
        #expect(abs(try #require(average.estimate(at: at(5_000))) - 0.05 * 0.3679) < 0.0005)
        #expect(try #require(average.estimate(at: at(25_000))) < 0.001)  // below a 1 ms node after 5 periods
        #expect(average.seconds == 0.05)  // reading does not change the recorded value
    }
}

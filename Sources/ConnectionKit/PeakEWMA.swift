import Foundation

/// A peak-sensitive moving average of round-trip times (Finagle's and
/// Linkerd's "peak EWMA"): a sample above the average replaces it at once, so
/// a node that turns slow is avoided from its first slow reply; samples below
/// pull it down with a weight that grows with the time since the last sample,
/// so a node recovers within a few ``decay`` periods — or within a few dozen
/// faster samples, since each one weighs at least ``minimumSampleWeight``.
/// That floor matters for sub-millisecond round trips: a stall of the client
/// itself (a descheduled thread) lands on whichever node was in flight, and
/// without it a fast node would be shunned for seconds. Read through
/// ``estimate(at:)``, an idle average also decays toward zero, so a node that
/// was avoided after one slow reply is tried again instead of being shunned
/// until something else measures it.
package struct PeakEWMA<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    /// The time constant: after this long, old samples weigh 1/e.
    package let decay: Duration
    /// The least weight a sample below the average gets, however soon it follows the last.
    package let minimumSampleWeight: Double
    /// The average in seconds; `nil` before the first sample.
    package private(set) var seconds: Double?
    private var updated: Instant?

    /// Creates an empty average.
    package init(decay: Duration, minimumSampleWeight: Double = 0.05) {
        self.decay = decay
        self.minimumSampleWeight = min(max(minimumSampleWeight, 0), 1)
    }

    /// The average as of `now`: the last value, decayed toward zero for the
    /// time since the last sample; `nil` before the first sample.
    package func estimate(at now: Instant) -> Double? {
        guard let seconds, let updated else { return nil }
        let idle = max(0, updated.duration(to: now).inSeconds)
        return seconds * exp(-idle / max(decay.inSeconds, 1e-9))
    }

    /// Adds a round trip that took `sample`, observed at `now`.
    package mutating func record(_ sample: Duration, at now: Instant) {
        let value = max(0, sample.inSeconds)
        defer { updated = now }
        guard let current = seconds, let updated else {
            seconds = value
            return
        }
        if value >= current {
            seconds = value
            return
        }
        let elapsed = max(0, updated.duration(to: now).inSeconds)
        let weight = min(exp(-elapsed / max(decay.inSeconds, 1e-9)), 1 - minimumSampleWeight)
        seconds = current * weight + value * (1 - weight)
    }
}

import ConnectionKit
import Foundation

/// A peak-sensitive moving average of round-trip times (Finagle's and
/// Linkerd's "peak EWMA"): a sample above the average replaces it at once, so
/// a node that turns slow is avoided from its first slow reply; samples below
/// pull it down with a weight that grows with the time since the last sample,
/// so a node recovers within a few ``decay`` periods.
public struct PeakEWMA<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    /// The time constant: after this long, old samples weigh 1/e.
    public let decay: Duration
    /// The average in seconds; `nil` before the first sample.
    public private(set) var seconds: Double?
    private var updated: Instant?

    /// Creates an empty average.
    public init(decay: Duration) {
        self.decay = decay
    }

    /// Adds a round trip that took `sample`, observed at `now`.
    public mutating func record(_ sample: Duration, at now: Instant) {
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
        let weight = exp(-elapsed / max(decay.inSeconds, 1e-9))
        seconds = current * weight + value * (1 - weight)
    }
}

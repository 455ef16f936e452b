import ConnectionKit

/// The write positions the checks read on the primaries, with when each was first seen: what
/// times a standby's lag from its replayed position alone, on the cluster's clock (no server
/// clocks compared). A standby that has replayed up to position `p` is as far behind as the
/// time since the checks first saw a primary past `p`, to within one check interval.
struct WritePositionHistory: Sendable {
    private struct Sample: Sendable {
        let position: Int64
        let seenAt: AnyClock.Instant
    }

    /// Samples with rising positions, oldest first; a position only enters when it is new.
    private var samples: [Sample] = []
    private let capacity: Int

    /// A history of at most `capacity` samples (older ones are forgotten; a standby behind all of
    /// them is timed from the oldest, a lower bound).
    init(capacity: Int = 512) {
        self.capacity = capacity
    }

    /// The newest position read on a primary.
    var latest: Int64? { samples.last?.position }

    /// Takes in a position read on a primary at `now`; one equal to the newest adds nothing, and one
    /// below it starts the history again (a new primary after a failover that lost writes: the old
    /// positions will not be reached).
    mutating func record(_ position: Int64, at now: AnyClock.Instant) {
        if let latest, position == latest { return }
        if let latest, position < latest { samples.removeAll() }
        if samples.count == capacity { samples.removeFirst(capacity / 4) }
        samples.append(Sample(position: position, seenAt: now))
    }

    /// How long ago the checks first saw a primary past `replayed`: zero when none did.
    func lag(ofReplayed replayed: Int64, at now: AnyClock.Instant) -> Duration {
        // The first sample past `replayed`; samples rise, so a binary search finds it.
        var low = 0
        var high = samples.count
        while low < high {
            let middle = (low + high) / 2
            if samples[middle].position > replayed { high = middle } else { low = middle + 1 }
        }
        guard low < samples.count else { return .zero }
        return max(.zero, samples[low].seenAt.duration(to: now))
    }
}

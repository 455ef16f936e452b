/// A point in time as an offset from a clock's origin: the instants of
/// ``ManualClock`` (the time advanced since it was made) and ``AnyClock`` (the
/// time since the wrapper was made). `Origin` names the clock, so that the
/// instants of two kinds of clock cannot be mixed by mistake.
public struct OffsetInstant<Origin>: InstantProtocol, Sendable, Hashable, Comparable {
    /// The offset from the clock's origin.
    public let offset: Duration

    /// The instant at `offset` from the clock's origin.
    public init(offset: Duration) { self.offset = offset }

    /// The instant `duration` later.
    public func advanced(by duration: Duration) -> OffsetInstant { OffsetInstant(offset: offset + duration) }
    /// The duration from this instant to `other`.
    public func duration(to other: OffsetInstant) -> Duration { other.offset - offset }
    /// Orders by offset.
    public static func < (lhs: OffsetInstant, rhs: OffsetInstant) -> Bool { lhs.offset < rhs.offset }
}

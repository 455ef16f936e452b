/// Any clock that measures in `Duration`, behind one concrete type: what a
/// type that is not generic over its clock keeps (`ContinuousClock` by
/// default, ``ManualClock`` in tests), so that its timers, timeouts and
/// latency figures all follow the clock it was given.
///
/// Its instants are offsets from the moment the wrapper was made, so
/// instants of two wrappers do not compare; keep one per component.
public struct AnyClock: Clock, Sendable {
    /// A point on the wrapped clock: the time since the wrapper was made.
    public typealias Instant = OffsetInstant<AnyClock>

    private let offsetNow: @Sendable () -> Duration
    private let sleepUntilOffset: @Sendable (Duration, Duration?) async throws -> Void
    /// The wrapped clock's resolution.
    public let minimumResolution: Duration

    /// Wraps `clock`; its present moment becomes offset zero.
    public init<Wrapped: Clock & Sendable>(_ clock: Wrapped) where Wrapped.Duration == Duration, Wrapped.Instant: Sendable {
        let origin = clock.now
        offsetNow = { origin.duration(to: clock.now) }
        sleepUntilOffset = { offset, tolerance in try await clock.sleep(until: origin.advanced(by: offset), tolerance: tolerance) }
        minimumResolution = clock.minimumResolution
    }

    /// The wall of the process: a `ContinuousClock`, shared.
    public static let continuous = AnyClock(ContinuousClock())

    /// The present moment of the wrapped clock.
    public var now: Instant { Instant(offset: offsetNow()) }

    /// Sleeps on the wrapped clock until `deadline`; throws `CancellationError` when cancelled.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await sleepUntilOffset(deadline.offset, tolerance)
    }
}

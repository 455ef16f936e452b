/// How delays between retries grow.
///
/// Without compounding (the default), the n-th delay is
/// `min(initial · multiplierⁿ, maximum)` scaled by a random factor in
/// `[1 − jitter, 1 + jitter]` and capped at `maximum` again. With compounding
/// each delay is the previous one times
/// `multiplier · U[1 − jitter, 1 + jitter]`, capped, so the jitter carries forward.
public struct BackoffPolicy: Sendable, Hashable {
    /// The base of the first delay.
    public var initial: Duration
    /// How much the base grows per attempt.
    public var multiplier: Double
    /// No delay is longer.
    public var maximum: Duration
    /// The random spread, 0 (none) to 1 (0 to twice the delay).
    public var jitter: Double
    /// Whether the jittered delay becomes the base of the next one.
    public var compounding: Bool

    /// Creates a policy; `jitter` is clamped to 0...1 and `multiplier` to at least 1.
    public init(initial: Duration, multiplier: Double = 2, maximum: Duration, jitter: Double = 0.2, compounding: Bool = false) {
        self.initial = initial
        self.multiplier = max(1, multiplier)
        self.maximum = maximum
        self.jitter = min(1, max(0, jitter))
        self.compounding = compounding
    }

    /// go-kit's reconnect policy: starting from 1 s, each delay is
    /// `min(2d · U[0.5, 1.5), 60 s)` of the previous one `d`.
    package static let goKit = BackoffPolicy(
        initial: .seconds(1), multiplier: 2, maximum: .seconds(60), jitter: 0.5, compounding: true)

    /// A quick policy for reconnecting to a local server: 50 ms doubling to 5 s, ±20 %.
    public static let standard = BackoffPolicy(initial: .milliseconds(50), multiplier: 2, maximum: .seconds(5), jitter: 0.2)
}

/// A backoff sequence: ``next()`` gives the next delay, ``reset()`` starts over (after a success).
package struct Backoff: Sendable {
    /// The policy followed.
    package let policy: BackoffPolicy
    private var base: Duration
    private var random: SeededRandom
    /// How many delays were handed out since the last reset.
    package private(set) var attempts = 0

    /// Creates a sequence; a seed makes it repeatable (tests), `nil` seeds from the system.
    package init(policy: BackoffPolicy, seed: UInt64? = nil) {
        self.policy = policy
        self.base = policy.initial
        self.random = SeededRandom(seed: seed ?? UInt64.random(in: .min ... .max))
    }

    /// The next delay.
    package mutating func next() -> Duration {
        attempts += 1
        let factor = policy.jitter == 0 ? 1 : Double.random(in: (1 - policy.jitter)...(1 + policy.jitter), using: &random)
        if policy.compounding {
            base = min(base.scaled(by: policy.multiplier * factor), policy.maximum)
            return base
        }
        let delay = min(base.scaled(by: factor), policy.maximum)
        base = min(base.scaled(by: policy.multiplier), policy.maximum)
        return delay
    }

    /// Starts the sequence over, as after a success.
    package mutating func reset() {
        base = policy.initial
        attempts = 0
    }
}

/// SplitMix64: a small, fast, seedable random number generator, so that
/// jitter can be replayed exactly in tests.
@usableFromInline
package struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from a seed.
    @usableFromInline
    package init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @usableFromInline
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Duration {
    /// This duration times `factor` (to the nanosecond), saturating at about ±292 years
    /// instead of trapping when a large policy is scaled.
    @inlinable
    func scaled(by factor: Double) -> Duration {
        let nanoseconds = (inSeconds * factor * 1e9).rounded()
        guard nanoseconds.isFinite, abs(nanoseconds) < 9.2e18 else {
            return .nanoseconds(nanoseconds < 0 ? -Int64(9.2e18) : Int64(9.2e18))
        }
        return .nanoseconds(Int64(nanoseconds))
    }
}

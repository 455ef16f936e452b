import Foundation

/// The three states of a circuit breaker.
public enum CircuitState: String, Sendable, Hashable, Codable {
    /// Calls pass; connection-class failures are counted.
    case closed
    /// Calls fail at once; a probe runs after a backoff delay.
    case open
    /// A probe is in flight; calls still fail at once.
    case halfOpen
}

/// Settings of a ``CircuitBreaker``.
public struct CircuitBreakerConfiguration: Sendable, Hashable {
    /// The decayed failure count at which the breaker opens.
    public var failureThreshold: Double = 5
    /// How long until a failure counts half as much (the decaying window).
    public var halfLife: Duration = .seconds(10)
    /// Delays between probes while open.
    public var probeBackoff: BackoffPolicy = .standard
    /// Whether a successful call clears the failure score (only consecutive failures count). Default off.
    public var resetsOnSuccess = false
    /// When set, failures are counted exactly within this sliding window instead of
    /// decaying: the breaker opens at the ``failureThreshold``-th failure within it. Default `nil` (decaying).
    public var slidingWindow: Duration?

    /// The defaults: opens at 5 recent failures, half-life 10 s, probes after 50 ms doubling to 5 s.
    public init() {}
}

/// The breaker's logic without I/O or time of its own: events carry `now`.
public struct CircuitBreakerStateMachine<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    enum State: Sendable {
        case closed(score: Double, updated: Instant?)
        case open(since: Instant, nextProbe: Instant)
        case halfOpen(since: Instant)
    }

    /// What a caller may do now.
    public enum Admission: Equatable, Sendable {
        /// Go ahead.
        case allow
        /// Go ahead as the trial call (no background prober is running); report its outcome.
        case allowTrial
        /// Fail at once; the breaker has been open since then.
        case reject(openSince: Instant)
    }

    /// A change of state the shell must act on (start probing, notify observers).
    public enum Transition: Equatable, Sendable {
        /// The breaker opened; probe at `nextProbe`.
        case opened(nextProbe: Instant)
        /// A probe failed; probe again at `nextProbe`.
        case reopened(nextProbe: Instant)
        /// A probe succeeded; the breaker closed.
        case closed
    }

    let configuration: CircuitBreakerConfiguration
    private(set) var state: State = .closed(score: 0, updated: nil)
    private var backoff: Backoff
    /// The failures within the sliding window, oldest first (with ``CircuitBreakerConfiguration/slidingWindow`` only).
    private var recentFailures: [Instant] = []

    /// Creates a closed breaker.
    public init(configuration: CircuitBreakerConfiguration, seed: UInt64? = nil) {
        self.configuration = configuration
        self.backoff = Backoff(policy: configuration.probeBackoff, seed: seed)
    }

    /// The current state.
    public var circuitState: CircuitState {
        switch state {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        }
    }

    /// The decayed failure score at `now` (closed state only; 0 otherwise).
    public func failureScore(at now: Instant) -> Double {
        if let window = configuration.slidingWindow {
            guard case .closed = state else { return 0 }
            return Double(recentFailures.filter { $0.duration(to: now) < window }.count)
        }
        guard case .closed(let score, let updated) = state, let updated else { return 0 }
        return decayed(score, from: updated, to: now)
    }

    /// When the next probe is due, while open.
    public var nextProbe: Instant? {
        if case .open(_, let next) = state { return next }
        return nil
    }

    /// Decides whether a call may run. Without a background prober, the first
    /// call after the probe time becomes the trial (and the state half-open).
    public mutating func admit(now: Instant, proberRunning: Bool) -> Admission {
        switch state {
        case .closed:
            return .allow
        case .open(let since, let next):
            if !proberRunning, now >= next {
                state = .halfOpen(since: since)
                return .allowTrial
            }
            return .reject(openSince: since)
        case .halfOpen(let since):
            return .reject(openSince: since)
        }
    }

    /// Counts a connection-class failure; may open the breaker.
    public mutating func recordFailure(now: Instant) -> Transition? {
        guard case .closed(let score, let updated) = state else { return nil }
        if let window = configuration.slidingWindow {
            recentFailures.removeAll { $0.duration(to: now) >= window }
            recentFailures.append(now)
            guard Double(recentFailures.count) >= configuration.failureThreshold else { return nil }
            recentFailures.removeAll()
        } else {
            let current = (updated.map { decayed(score, from: $0, to: now) } ?? 0) + 1
            guard current >= configuration.failureThreshold else {
                state = .closed(score: current, updated: now)
                return nil
            }
        }
        backoff.reset()
        let next = now.advanced(by: backoff.next())
        state = .open(since: now, nextProbe: next)
        return .opened(nextProbe: next)
    }

    /// Counts a successful call: with ``CircuitBreakerConfiguration/resetsOnSuccess``, the failure score goes back to zero.
    public mutating func recordSuccess() {
        guard configuration.resetsOnSuccess, case .closed(let score, _) = state else { return }
        recentFailures.removeAll()
        if score > 0 { state = .closed(score: 0, updated: nil) }
    }

    /// Starts a probe if one is due; returns whether the caller should probe now.
    public mutating func startProbe(now: Instant) -> Bool {
        guard case .open(let since, let next) = state, now >= next else { return false }
        state = .halfOpen(since: since)
        return true
    }

    /// Reports the outcome of a probe or trial call.
    public mutating func probeFinished(success: Bool, now: Instant) -> Transition? {
        guard case .halfOpen(let since) = state else { return nil }
        if success {
            state = .closed(score: 0, updated: nil)
            backoff.reset()
            return .closed
        }
        let next = now.advanced(by: backoff.next())
        state = .open(since: since, nextProbe: next)
        return .reopened(nextProbe: next)
    }

    private func decayed(_ score: Double, from: Instant, to now: Instant) -> Double {
        let elapsed = from.duration(to: now).inSeconds
        let halfLife = configuration.halfLife.inSeconds
        guard elapsed > 0, halfLife > 0 else { return halfLife > 0 ? score : 0 }
        return score * exp2(-elapsed / halfLife)
    }
}

import Foundation

/// The breaker's logic without I/O or time of its own: events carry `now`.
struct CircuitBreakerStateMachine<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    enum State: Sendable {
        case closed(score: Double, updated: Instant?)
        case open(since: Instant, nextProbe: Instant)
        case halfOpen(since: Instant)
    }

    /// What a caller may do now.
    enum Admission: Equatable, Sendable {
        /// Go ahead.
        case allow
        /// Go ahead as the trial call (no background prober is running); report its outcome.
        case allowTrial
        /// Fail at once; the breaker has been open since then.
        case reject(openSince: Instant)
    }

    /// A change of state the shell must act on (start probing, notify observers).
    enum Transition: Equatable, Sendable {
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
    init(configuration: CircuitBreakerConfiguration, seed: UInt64? = nil) {
        self.configuration = configuration
        self.backoff = Backoff(policy: configuration.probeBackoff, seed: seed)
    }

    /// The current state.
    var circuitState: CircuitState {
        switch state {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        }
    }

    /// The decayed failure score at `now` (closed state only; 0 otherwise).
    func failureScore(at now: Instant) -> Double {
        if let window = configuration.slidingWindow {
            guard case .closed = state else { return 0 }
            return Double(recentFailures.filter { $0.duration(to: now) < window }.count)
        }
        guard case .closed(let score, let updated) = state, let updated else { return 0 }
        return decayed(score, from: updated, to: now)
    }

    /// When the next probe is due, while open.
    var nextProbe: Instant? {
        if case .open(_, let next) = state { return next }
        return nil
    }

    /// Whether ``admit(now:proberRunning:)`` would let a trial call through now (it changes nothing).
    func admitsTrial(now: Instant, proberRunning: Bool) -> Bool {
        guard !proberRunning, case .open(_, let next) = state else { return false }
        return now >= next
    }

    /// Decides whether a call may run. Without a background prober, the first
    /// call after the probe time becomes the trial (and the state half-open).
    mutating func admit(now: Instant, proberRunning: Bool) -> Admission {
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
    mutating func recordFailure(now: Instant) -> Transition? {
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
    mutating func recordSuccess() {
        guard configuration.resetsOnSuccess, case .closed(let score, _) = state else { return }
        recentFailures.removeAll()
        if score > 0 { state = .closed(score: 0, updated: nil) }
    }

    /// Starts a probe if one is due; returns whether the caller should probe now.
    mutating func startProbe(now: Instant) -> Bool {
        guard case .open(let since, let next) = state, now >= next else { return false }
        state = .halfOpen(since: since)
        return true
    }

    /// Reports the outcome of a probe or trial call.
    mutating func probeFinished(success: Bool, now: Instant) -> Transition? {
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

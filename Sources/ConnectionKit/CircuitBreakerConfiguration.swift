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

/// Settings of the circuit breaker a client keeps per server or node (a cluster's
/// nodes, `ClusterDriverConfiguration.breaker`).
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

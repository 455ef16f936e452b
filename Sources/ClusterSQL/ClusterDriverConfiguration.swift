import ConnectionKit

/// Settings of a ``ClusterDriver``; every field has a documented default.
public struct ClusterDriverConfiguration: Sendable, Hashable {
    /// The cluster's name, in errors, logs, stats and metrics.
    public var name: String
    /// How opens pick a node. Default ``BalancingStrategy/latency``.
    public var strategy: BalancingStrategy = .latency
    /// The kind of node an open asks for when its DSN names none. Default ``TargetRole/any``.
    public var target: TargetRole = .any
    /// The longest an open may take, all attempts together. Default 10 s.
    public var openTimeout: Duration = .seconds(10)
    /// The longest wait for a first try before the next node is tried as well
    /// (latency and round-robin); the wait adapts to 3× the node's connect time, at least 5 ms. Default 100 ms.
    public var hedgeDelay: Duration = .milliseconds(100)
    /// The time constant of the latency averages. Default 5 s.
    public var latencyDecay: Duration = .seconds(5)
    /// How often a background check measures each serving node and re-reads its role. Default 1 s.
    public var checkInterval: Duration = .seconds(1)
    /// How long a check or a probe may take before it counts as a failure. Default 2 s.
    public var checkTimeout: Duration = .seconds(2)
    /// When a node is ejected and how it is probed back. Default: ejected at the
    /// first connection-class failure, probed after 50 ms doubling to 5 s, with jitter.
    public var breaker: CircuitBreakerConfiguration
    /// Whether a `query` whose text looks like a plain read runs again, once,
    /// on another node after its node failed once the statement may have
    /// reached the server (outside a transaction, never after a query timeout).
    ///
    /// A heuristic, so it is off by default: the text is one statement starting
    /// with `SELECT`, `SHOW` or `VALUES`, without `INTO`, `FOR UPDATE`/`SHARE`,
    /// `ANALYZE`/`ANALYSE` or the sequence functions; but a function called in a
    /// `SELECT` may write (a PostgreSQL or MariaDB function with side effects),
    /// and would then write twice. Turn it on only when your reads call no such
    /// function; ``ClusterDriver/idempotent(_:)`` marks statements one by one.
    /// A statement that surely never reached a server is retried either way.
    /// Default `false`.
    public var retryReads: Bool = false
    /// How long a `Database` pooling over the cluster keeps a connection
    /// (unless its own configuration says otherwise), so that pooled traffic
    /// follows the balancer as latencies and roles change. Default 60 s.
    public var connectionLifetime: Duration? = .seconds(60)
    /// How far behind the cluster's writes a node may be and still be chosen, as the background
    /// checks measure it (``ReplicationProbe``); a node over a limit takes no new opens, and its
    /// connections move to another node before their next statement outside a transaction, until
    /// it catches up. An open's DSN may set its own (`max_replication_lag=2s`,
    /// `max_transactions_behind=10`). Default: no limit.
    public var replicationLimits: ReplicationLimits = .unlimited
    /// How long a statement in a ``ReadYourWritesSession`` waits for its node to apply the
    /// session's writes before it moves to a primary. Default 1 s. It is checked between reads
    /// of the node's position: a read in flight when it passes finishes first, and one still
    /// unanswered ``checkTimeout`` later (a silent node) fails the statement with `timeout`.
    public var readYourWritesTimeout: Duration = .seconds(1)
    /// How many nodes one statement may be tried on. Default 3.
    public var maxAttempts: Int = 3

    /// The defaults, for a cluster named `name`.
    public init(name: String) {
        self.name = name
        var breaker = CircuitBreakerConfiguration()
        breaker.failureThreshold = 1
        self.breaker = breaker
    }
}

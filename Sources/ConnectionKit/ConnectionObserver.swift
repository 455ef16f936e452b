import Metrics

/// Why a connection was closed.
public enum CloseReason: String, Sendable, Hashable, CaseIterable {
    /// It saw a connection-class error, or a ping failed.
    case broken
    /// It came back in a state a new connection does not have (a transaction
    /// open, a Redis `MULTI` or `SUBSCRIBE` under way) that could not be reset.
    case dirty
    /// It reached its maximum lifetime.
    case maxLifetime
    /// It sat idle longer than the maximum idle time.
    case maxIdleTime
    /// It was returned to a full pool (no overflow room) or drained from the overflow buffer.
    case overflow
    /// The pool was emptied (`RedisPool.empty()`, say) and closed it.
    case emptied
    /// The pool shut down.
    case shutdown
}

/// Receives the events of one pool, manager or breaker (its "source").
///
/// Every method has an empty default. Calls happen on the caller's task,
/// outside any lock; keep them quick: ``borrowed(waited:)`` is on the hot path.
public protocol ConnectionObserver: Sendable {
    /// A connection was opened.
    func opened()
    /// A connection was closed.
    func closed(reason: CloseReason)
    /// Opening a connection failed.
    func dialFailed(_ error: any Error)
    /// A connection was handed out after waiting `waited` (zero when none was needed).
    func borrowed(waited: Duration)
    /// A borrower gave up after the get timeout.
    func timedOut()
    /// A circuit breaker changed state.
    func breakerChanged(from: CircuitState, to: CircuitState)
    /// A transaction that lost a conflict (or its connection, before `COMMIT`) runs again.
    func transactionRetried()
    /// A `COMMIT` was sent and its answer lost: the transaction may or may not be committed.
    func commitOutcomeUnknown()
}

extension ConnectionObserver {
    /// Does nothing.
    public func opened() {}
    /// Does nothing.
    public func closed(reason: CloseReason) {}
    /// Does nothing.
    public func dialFailed(_ error: any Error) {}
    /// Does nothing.
    public func borrowed(waited: Duration) {}
    /// Does nothing.
    public func timedOut() {}
    /// Does nothing.
    public func breakerChanged(from: CircuitState, to: CircuitState) {}
    /// Does nothing.
    public func transactionRetried() {}
    /// Does nothing.
    public func commitOutcomeUnknown() {}
}

/// An observer that ignores everything (the default).
public struct SilentObserver: ConnectionObserver {
    /// Creates the observer.
    public init() {}
}

/// Counts events through swift-metrics, with a `source` dimension.
///
/// Metrics: `clustersql_connections_opened_total`, `clustersql_connections_closed_total`
/// (with `reason`), `clustersql_dial_failures_total`, `clustersql_borrows_total`,
/// `clustersql_borrow_wait_seconds` (a timer, waits only), `clustersql_borrow_timeouts_total`,
/// `clustersql_breaker_state` (0 closed, 1 half-open, 2 open),
/// `clustersql_breaker_transitions_total` (with `to`), `clustersql_transaction_retries_total`
/// and `clustersql_commit_outcome_unknown_total`.
public struct MetricsObserver: ConnectionObserver {
    private let openedCounter: Counter
    private let closedCounters: [CloseReason: Counter]
    private let dialFailures: Counter
    private let borrows: Counter
    private let waits: Timer
    private let timeouts: Counter
    private let breakerState: Gauge
    private let transitions: [CircuitState: Counter]
    private let retries: Counter
    private let unknownCommits: Counter

    /// Creates the metrics for `source` through `factory` (never the global one implicitly).
    public init(source: String, factory: any MetricsFactory) {
        let dims = [("source", source)]
        openedCounter = Counter(label: "clustersql_connections_opened_total", dimensions: dims, factory: factory)
        var closed: [CloseReason: Counter] = [:]
        for reason in CloseReason.allCases {
            closed[reason] = Counter(
                label: "clustersql_connections_closed_total", dimensions: dims + [("reason", reason.rawValue)], factory: factory)
        }
        closedCounters = closed
        dialFailures = Counter(label: "clustersql_dial_failures_total", dimensions: dims, factory: factory)
        borrows = Counter(label: "clustersql_borrows_total", dimensions: dims, factory: factory)
        waits = Timer(label: "clustersql_borrow_wait_seconds", dimensions: dims, preferredDisplayUnit: .seconds, factory: factory)
        timeouts = Counter(label: "clustersql_borrow_timeouts_total", dimensions: dims, factory: factory)
        breakerState = Gauge(label: "clustersql_breaker_state", dimensions: dims, factory: factory)
        var byState: [CircuitState: Counter] = [:]
        for state in [CircuitState.closed, .open, .halfOpen] {
            byState[state] = Counter(
                label: "clustersql_breaker_transitions_total", dimensions: dims + [("to", state.rawValue)], factory: factory)
        }
        transitions = byState
        retries = Counter(label: "clustersql_transaction_retries_total", dimensions: dims, factory: factory)
        unknownCommits = Counter(label: "clustersql_commit_outcome_unknown_total", dimensions: dims, factory: factory)
    }

    /// Counts an opened connection.
    public func opened() { openedCounter.increment() }
    /// Counts a closed connection by reason.
    public func closed(reason: CloseReason) { closedCounters[reason]?.increment() }
    /// Counts a failed dial.
    public func dialFailed(_ error: any Error) { dialFailures.increment() }
    /// Counts a borrow; records the wait when there was one.
    public func borrowed(waited: Duration) {
        borrows.increment()
        if waited > .zero { waits.record(duration: waited) }
    }
    /// Counts a timeout.
    public func timedOut() { timeouts.increment() }
    /// Records the new state and counts the transition.
    public func breakerChanged(from: CircuitState, to: CircuitState) {
        breakerState.record(to == .closed ? 0 : to == .halfOpen ? 1 : 2)
        transitions[to]?.increment()
    }
    /// Counts a transaction run again.
    public func transactionRetried() { retries.increment() }
    /// Counts a commit whose outcome is unknown.
    public func commitOutcomeUnknown() { unknownCommits.increment() }
}

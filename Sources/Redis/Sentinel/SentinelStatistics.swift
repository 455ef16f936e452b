import ConnectionKit
import Metrics

/// What a ``SentinelClient`` knows of one master name, and what happened to it.
public struct SentinelMasterStatistics: Sendable, Codable, Hashable {
    /// The master name.
    public var name: String
    /// The verified master served now; `nil` while none is.
    public var master: SentinelAddress?
    /// How many masters have been served (1 after the first discovery, +1 per switch).
    public var generation: Int
    /// The replicas reads go to now (empty until replica reads are used).
    public var replicas: [SentinelAddress]
    /// Switches to another master the client made (failovers followed).
    public var failoversFollowed: Int
    /// Milliseconds from the last `+switch-master` announcement received to the new master being served
    /// (0 when the client's own check had switched before the announcement arrived); `nil` before any.
    public var lastFollowMilliseconds: Double?
    /// `READONLY` replies seen on connections to what was believed to be the master.
    public var readOnlyReplies: Int
    /// Connections to replaced or demoted masters closed by the client, borrowed ones included.
    public var oldMasterConnectionsClosed: Int
    /// Failed questions to sentinels.
    public var sentinelErrors: Int
    /// What each sentinel said at the last check.
    public var sentinels: [SentinelReport]
    /// The master pool's figures; `nil` while no master is served.
    public var pool: PoolStatistics?
}

/// One sentinel's answer at the last check.
public struct SentinelReport: Sendable, Codable, Hashable {
    /// The sentinel.
    public var sentinel: SentinelAddress
    /// The master it names; `nil` when it did not name one.
    public var names: SentinelAddress?
    /// The config epoch of its view (a higher one is newer); `nil` when it did not name a master.
    public var epoch: Int?
    /// Why it named none (`unknown master`, or the error's code); never a password.
    public var problem: String?
}

/// The client's counters, and the same events as swift-metrics (dimension `master`):
/// `clustersql_sentinel_failovers_total`, `clustersql_sentinel_follow_seconds` (a timer),
/// `clustersql_sentinel_errors_total`, `clustersql_sentinel_readonly_total`,
/// `clustersql_sentinel_old_connections_closed_total`.
final class SentinelCounters: Sendable {
    struct Figures: Sendable {
        var failovers = 0
        var lastFollow: Duration?
        var readOnly = 0
        var oldClosed = 0
        var sentinelErrors = 0
        var reports: [SentinelReport] = []
    }

    let figures = Locked(Figures())
    private let failovers: Counter
    private let follow: Timer
    private let errors: Counter
    private let readOnly: Counter
    private let oldClosed: Counter

    init(master: String, factory: any MetricsFactory) {
        let dimensions = [("master", master)]
        failovers = Counter(label: "clustersql_sentinel_failovers_total", dimensions: dimensions, factory: factory)
        follow = Timer(
            label: "clustersql_sentinel_follow_seconds", dimensions: dimensions, preferredDisplayUnit: .milliseconds, factory: factory)
        errors = Counter(label: "clustersql_sentinel_errors_total", dimensions: dimensions, factory: factory)
        readOnly = Counter(label: "clustersql_sentinel_readonly_total", dimensions: dimensions, factory: factory)
        oldClosed = Counter(label: "clustersql_sentinel_old_connections_closed_total", dimensions: dimensions, factory: factory)
    }

    func failoverFollowed(after announcement: Duration?) {
        figures.withLock {
            $0.failovers += 1
            if let announcement { $0.lastFollow = announcement }
        }
        failovers.increment()
        if let announcement { follow.record(duration: announcement) }
    }

    /// A failover counted already, timed once its announcement arrived.
    func followTimed(_ duration: Duration) {
        figures.withLock { $0.lastFollow = duration }
        follow.record(duration: duration)
    }

    func readOnlySeen() {
        figures.withLock { $0.readOnly += 1 }
        readOnly.increment()
    }

    func oldConnectionsClosed(_ count: Int) {
        guard count > 0 else { return }
        figures.withLock { $0.oldClosed += count }
        oldClosed.increment(by: count)
    }

    func answers(_ answers: [(SentinelAddress, SentinelAnswer)]) {
        var failures = 0
        let reports = answers.map { address, answer -> SentinelReport in
            switch answer {
            case .master(let master, let epoch):
                return SentinelReport(sentinel: address, names: master, epoch: epoch)
            case .unknownMaster: return SentinelReport(sentinel: address, problem: "unknown master")
            case .failed(let error):
                failures += 1
                let problem = error.code == .server ? error.prefix : error.code.name
                return SentinelReport(sentinel: address, problem: problem)
            }
        }
        figures.withLock {
            $0.sentinelErrors += failures
            $0.reports = reports.sorted { $0.sentinel < $1.sentinel }
        }
        if failures > 0 { errors.increment(by: failures) }
    }
}

import ConnectionKit
import Foundation
import Logging
import Metrics
import SQLCore

/// One node of a cluster: its driver, health (a circuit breaker), role,
/// latency averages and counters. Every figure is updated under one lock.
final class ClusterNode: Sendable {
    struct Figures: Sendable {
        var role: NodeRole = .unknown
        /// As the last check measured it; `nil` before the first.
        var lag: ReplicationLag?
        /// The furthest write position the node is known to have applied (checks, reads, writes).
        var appliedPosition: Int64?
        var queryLatency: PeakEWMA<AnyClock.Instant>
        var connectLatency: PeakEWMA<AnyClock.Instant>
        var inFlight = 0
        var connections = 0
        var errors = 0
        var statements = 0
        var lastSuccess: Date?
        var lastError: Date?
        var lastErrorMessage: String?
        var removed = false
    }

    let name: String
    let driver: any SQLDriver
    let dsn: String
    /// What runs on each connection the node opens for users (not on its health checks).
    let sessionSetup: SQLSessionSetup?
    let roleDetector: RoleDetector
    let replicationProbe: ReplicationProbe
    let breaker: CircuitBreaker<AnyClock>
    /// The cluster's clock: latency figures, the breaker's timers and the probe's deadline follow it.
    let clock: AnyClock
    private let figures: Locked<Figures>
    private let metrics: NodeMetrics
    private let logger: Logger
    /// Rings when the node should be checked now (after a read-only error or a statement timeout).
    let checkRequests: AsyncStream<Void>
    private let requestCheck: AsyncStream<Void>.Continuation
    /// Finishes when the node is removed, which ends its background work.
    let retirement: AsyncStream<Void>
    private let retire: AsyncStream<Void>.Continuation

    init(
        name: String, driver: any SQLDriver, dsn: String, sessionSetup: SQLSessionSetup? = nil, roleDetector: RoleDetector,
        replicationProbe: ReplicationProbe,
        configuration: ClusterDriverConfiguration, clock: AnyClock, metrics: NodeMetrics, logger: Logger
    ) {
        self.clock = clock
        self.name = name
        self.driver = driver
        self.dsn = dsn
        self.sessionSetup = sessionSetup
        self.roleDetector = roleDetector
        self.replicationProbe = replicationProbe
        self.metrics = metrics
        self.logger = logger
        figures = Locked(
            Figures(
                queryLatency: PeakEWMA(decay: configuration.latencyDecay),
                connectLatency: PeakEWMA(decay: configuration.latencyDecay)))
        (checkRequests, requestCheck) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        (retirement, retire) = AsyncStream.makeStream()
        let checkTimeout = configuration.checkTimeout
        breaker = CircuitBreaker(
            name: "\(configuration.name)/\(name)", configuration: configuration.breaker, clock: clock,
            observer: HealthGauge(up: metrics.up), logger: logger,
            isFailure: { ClusterNode.isNodeFailure($0) },
            probe: { [driver, dsn, roleDetector, figures] in
                // Re-admission needs a connection and a role check that both succeed in time.
                let role = try await withDeadline(checkTimeout, on: clock, what: "the probe of node \(name)") {
                    () async throws(SQLError) -> NodeRole in
                    let connection = try await driver.connect(to: dsn)
                    do throws(SQLError) {
                        let role = try await roleDetector.detect(connection)
                        await connection.close()
                        return role
                    } catch {
                        await connection.close()
                        throw error
                    }
                }
                figures.withLock { $0.role = role }
            })
    }

    /// Whether an error says the node (not the statement) failed.
    static func isNodeFailure(_ error: any Error) -> Bool {
        guard let error = error as? SQLError else { return false }
        // A caller's deadline (SQLDeadline) that ended the open is the caller's limit, not the node's fault.
        return error.isConnectionError && error.code != .cancelled && error.code != .roleMismatch && !SQLDeadline.hasPassed
    }

    // MARK: reading

    var role: NodeRole { figures.withLock { $0.role } }
    var isRemoved: Bool { figures.withLock { $0.removed } }
    var health: NodeHealth { NodeHealth(breaker.state) }

    var lag: ReplicationLag? { figures.withLock { $0.lag } }

    /// Takes in a write position the node has applied: from a check, as it is (a failover may set
    /// it back); from a read or a write of a session, only forward.
    func observeApplied(_ position: Int64, fromCheck: Bool = false) {
        figures.withLock { $0.appliedPosition = fromCheck ? position : max($0.appliedPosition ?? position, position) }
    }

    /// Whether the node is known to have applied `position`.
    func hasApplied(_ position: Int64) -> Bool {
        figures.withLock { ($0.appliedPosition ?? -1) >= position }
    }

    /// The write position the node has applied, read on `connection` now (`nil`: the backend has
    /// none). The probe is asked with the role unknown, so that it asks the server (a role read a
    /// moment ago may be stale): PostgreSQL answers its insert position on a primary, its replayed
    /// position on a standby.
    func readAppliedPosition(on connection: any SQLConnection) async throws(SQLError) -> Int64? {
        let position = try await replicationProbe.measure(connection, .unknown, nil).position
        if let position { observeApplied(position) }
        return position
    }

    /// Whether the node may take new work for `request`: up, of the role it asks for, and (unless
    /// `checkingLag` is off: a transaction under way stays where it is) within its replication limits.
    func serves(_ request: OpenRequest, checkingLag: Bool = true) -> Bool {
        let (role, removed, lag) = figures.withLock { ($0.role, $0.removed, $0.lag) }
        return !removed && breaker.state == .closed && request.target.accepts(role)
            && (!checkingLag || request.limits.admits(lag))
    }

    /// What the balancer needs.
    func candidate(index: Int, preferStandby: Bool) -> NodeCandidate {
        let now = clock.now
        return figures.withLock {
            NodeCandidate(
                index: index, latency: $0.queryLatency.estimate(at: now) ?? $0.connectLatency.estimate(at: now),
                inFlight: $0.inFlight, preferred: preferStandby && $0.role == .standby)
        }
    }

    /// The connect average, for the hedge delay.
    var connectLatency: Double? { figures.withLock { $0.connectLatency.seconds } }

    func statistics() -> NodeStatistics {
        let health = self.health
        return figures.withLock {
            NodeStatistics(
                name: name, driver: driver.name, dsn: DSNRedaction.redact(dsn), connections: $0.connections,
                errors: $0.errors, statements: $0.statements, lastSuccess: $0.lastSuccess, lastError: $0.lastError,
                lastErrorMessage: $0.lastErrorMessage, latencyMilliseconds: $0.queryLatency.seconds.map { $0 * 1000 },
                connectMilliseconds: $0.connectLatency.seconds.map { $0 * 1000 }, inFlight: $0.inFlight,
                state: health, role: $0.role, replicationLagSeconds: $0.lag?.seconds, bytesBehind: $0.lag?.bytesBehind,
                transactionsBehind: $0.lag?.transactionsBehind, isBehindByUnknown: $0.lag?.isBehindByUnknown ?? false)
        }
    }

    // MARK: recording

    /// Marks the node removed and ends its background work.
    func markRemoved() {
        figures.withLock { $0.removed = true }
        retire.finish()
        requestCheck.finish()
    }

    /// Asks the background check (``ClusterDriver/run()``) to check the node now: its role may
    /// have changed (a read-only error), or it may have stopped answering (a statement timeout).
    func checkSoon() { requestCheck.yield() }

    func setRole(_ role: NodeRole) {
        let previous = figures.withLock { figures -> NodeRole in
            defer { figures.role = role }
            return figures.role
        }
        if previous != role, previous != .unknown {
            logger.info("node role changed", metadata: ["node": "\(name)", "from": "\(previous)", "to": "\(role)"])
        }
    }

    func setLag(_ lag: ReplicationLag?) {
        figures.withLock { $0.lag = lag }
        if let seconds = lag?.seconds { metrics.replicationLag.record(seconds) }
        if let behind = lag?.transactionsBehind { metrics.transactionsBehind.record(behind) }
    }

    func recordConnect(_ elapsed: Duration) {
        let now = clock.now
        figures.withLock {
            $0.connectLatency.record(elapsed, at: now)
            $0.connections += 1
            $0.lastSuccess = Date()
        }
        metrics.connections.increment()
    }

    /// A connect abandoned after `elapsed` (the race was won elsewhere), or a
    /// check that timed out: the node was at least that slow, which both peak
    /// averages take in at once, so the balancer avoids it from now on.
    func recordStall(_ elapsed: Duration) {
        let now = clock.now
        figures.withLock {
            if elapsed.inSeconds > ($0.connectLatency.seconds ?? 0) { $0.connectLatency.record(elapsed, at: now) }
            if elapsed.inSeconds > ($0.queryLatency.seconds ?? 0) { $0.queryLatency.record(elapsed, at: now) }
        }
    }

    /// Records a failure of the node: counted, remembered, and reported to the breaker (which may eject the node).
    func recordFailure(_ error: SQLError, countForHealth: Bool = true) {
        let message = error.description
        figures.withLock {
            $0.errors += 1
            $0.lastError = Date()
            $0.lastErrorMessage = message
        }
        metrics.errors.increment()
        if countForHealth, Self.isNodeFailure(error) {
            if breaker.state == .closed {
                logger.warning("node failed", metadata: ["node": "\(name)", "error": "\(message)"])
            }
            breaker.recordFailure()
        }
    }

    func recordLatencySample(_ elapsed: Duration) {
        let now = clock.now
        figures.withLock {
            $0.queryLatency.record(elapsed, at: now)
            $0.lastSuccess = Date()
        }
    }

    /// Runs one statement on a connection to this node, counting it in flight and timing it.
    func measure<T>(_ body: () async throws(SQLError) -> T) async throws(SQLError) -> T {
        metrics.inFlight.record(
            figures.withLock {
                $0.inFlight += 1
                return $0.inFlight
            })
        let started = clock.now
        do {
            let result = try await body()
            let now = clock.now
            let elapsed = started.duration(to: now)
            metrics.inFlight.record(
                figures.withLock {
                    $0.inFlight -= 1
                    $0.statements += 1
                    $0.queryLatency.record(elapsed, at: now)
                    return $0.inFlight
                })
            metrics.statements.increment()
            metrics.latency.recordNanoseconds(Int64(elapsed.inSeconds * 1e9))
            return result
        } catch {
            metrics.inFlight.record(
                figures.withLock {
                    $0.inFlight -= 1
                    $0.statements += 1
                    return $0.inFlight
                })
            metrics.statements.increment()
            if error.code == .timeout {
                // A statement past its query timeout may only be slow: counted, and the node checked
                // at once, which ejects it if it stopped answering; the statement alone never does.
                recordFailure(error, countForHealth: false)
                checkSoon()
            } else if error.isConnectionError, error.code != .cancelled {
                recordFailure(error)
            }
            throw error
        }
    }

    /// Counts a connect in flight while `body` runs.
    func inFlight<T>(_ body: () async -> T) async -> T {
        figures.withLock { $0.inFlight += 1 }
        defer { figures.withLock { $0.inFlight -= 1 } }
        return await body()
    }
}

/// Keeps `clustersql_node_up` in step with the node's breaker.
private struct HealthGauge: ConnectionObserver {
    let up: Gauge

    func breakerChanged(from: CircuitState, to: CircuitState) {
        up.record(to == .closed ? 1 : 0)
    }
}

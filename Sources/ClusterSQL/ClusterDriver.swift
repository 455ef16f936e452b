import ConnectionKit
import Foundation
import Logging
import Metrics
import SQLCore
import ServiceLifecycle
import Tracing

/// An `SQLDriver` over the nodes of a replicated cluster (Galera, a
/// PostgreSQL primary with standbys, or any set of databases that hold the same data).
///
/// An open picks nodes by the cluster's ``BalancingStrategy`` among the nodes
/// that are up and can serve the target role, tries them concurrently
/// (`OpenRace`), and keeps the first success. Each node has a circuit
/// breaker: a connection-class failure of a connect or a statement ejects it
/// (a statement past its query timeout does not: it asks for a check of the
/// node, which ejects it if it stopped answering), and a background probe
/// re-admits it. ``run()`` (a `Service`) measures every node and re-reads its
/// role every ``ClusterDriverConfiguration/checkInterval``.
///
/// Without ``run()`` the cluster still works: roles are read at open; no
/// check runs, so only failures seen by connects and statements eject a node
/// (a timed-out statement ejects nothing); and once every node that could
/// serve an open is ejected, the open gives those whose probe delay has
/// passed a trial (their breakers' half-open state): a success re-admits the
/// node, a failure doubles its delay. Latencies come from the statements alone.
///
/// The DSN of ``connect(to:)`` names the target role: `""` (the cluster's
/// default), `read-write`, or `target=read-only` / `target_session_attrs=standby`;
/// and, optionally, how fresh a replica must be: `target=standby max_replication_lag=2s`
/// or `max_transactions_behind=10` (the cluster's ``ClusterDriverConfiguration/replicationLimits``
/// otherwise). The background checks measure each node's lag; a node over the
/// limits is not chosen until it catches up.
public final class ClusterDriver: SQLDriver, Service {
    private struct State: Sendable {
        var nodes: [String: ClusterNode] = [:]
        var turn = 0
        var running = false
        /// The write positions the checks read on primaries (PostgreSQL: their WAL LSNs).
        var writePositions = WritePositionHistory()
    }

    /// The configuration.
    public let configuration: ClusterDriverConfiguration
    let logger: Logger
    private let metricsFactory: any MetricsFactory
    /// The clock of every timer, timeout and latency figure of the cluster and its nodes.
    let clock: AnyClock
    /// Where opens and retries are traced, when tracing is on.
    let tracer: (any Tracer)?
    private let state = Locked(State())
    private let firstInstantiated = Date()
    private let added: AsyncStream<ClusterNode>
    private let announce: AsyncStream<ClusterNode>.Continuation

    @TaskLocal static var statementsAreIdempotent = false

    /// Creates a cluster without nodes.
    ///
    /// - Parameters:
    ///   - configuration: strategy, timeouts, check interval, breaker settings.
    ///   - logger: where node failures, role changes and ejections are logged.
    ///   - metricsFactory: where the per-node counters and gauges go.
    ///   - clock: the clock of every open timeout, hedge, check interval, probe backoff and latency
    ///     figure (the process's `ContinuousClock` by default; a `ManualClock` makes tests of the
    ///     cluster's timing deterministic).
    ///   - tracing: where a `clustersql.open` span per open (the nodes tried, the one chosen) and a
    ///     `clustersql.retry` span per statement retried on another node go; the statements' own
    ///     spans come from the nodes' drivers (give them tracing too).
    public init(
        configuration: ClusterDriverConfiguration,
        logger: Logger = Logger(label: "clustersql.cluster"),
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance,
        clock: AnyClock = .continuous,
        tracing: TracingConfiguration = TracingConfiguration()
    ) {
        self.configuration = configuration
        self.clock = clock
        self.tracer = tracing.activeTracer
        self.logger = logger
        self.metricsFactory = metricsFactory
        (added, announce) = AsyncStream.makeStream()
    }

    /// `cluster`.
    public var name: String { "cluster" }

    /// The nodes' drivers' `SQLDriver.taskExecutor` when they all share one
    /// (every PostgreSQL and MariaDB node: the socket reactor); `nil` otherwise.
    public var taskExecutor: (any TaskExecutor)? {
        let executors = sortedNodes.map { $0.driver.taskExecutor }
        guard let first = executors.first ?? nil,
            executors.allSatisfy({ $0.map { $0 === first } ?? false })
        else { return nil }
        return first
    }

    /// ``ClusterDriverConfiguration/connectionLifetime``, for pools over the cluster.
    public var pooledConnectionLifetime: Duration? { configuration.connectionLifetime }

    // MARK: nodes

    /// Adds a node. Its role is found out with `roleDetector` and its replication lag measured
    /// with `replicationProbe` (by default the driver's own, when it adopts `SQLReplicationDialect`:
    /// see ``RoleDetector/init(for:)`` and ``ReplicationProbe/init(for:)``).
    ///
    /// - Throws: `SQLError.Code.invalidConfiguration` for an empty or taken name.
    public func addNode(
        name: String, driver: any SQLDriver, dsn: String, roleDetector: RoleDetector? = nil,
        replicationProbe: ReplicationProbe? = nil
    ) throws(SQLError) {
        guard !name.isEmpty else { throw SQLError(.invalidConfiguration, message: "a node name must not be empty") }
        // A driver with a session setup (`onConnect`): the node runs the setup on the connections
        // it opens for users, and its health checks use the driver underneath, so that a failing
        // setup never counts against the node.
        let sessioned = driver as? SessionSetupDriver
        let driver = sessioned?.inner ?? driver
        let node = ClusterNode(
            name: name, driver: driver, dsn: dsn, sessionSetup: sessioned?.setup, roleDetector: roleDetector ?? RoleDetector(for: driver),
            replicationProbe: replicationProbe ?? ReplicationProbe(for: driver), configuration: configuration, clock: clock,
            metrics: NodeMetrics(cluster: configuration.name, node: name, factory: metricsFactory),
            logger: logger)
        let inserted = state.withLock { state -> Bool in
            guard state.nodes[name] == nil else { return false }
            state.nodes[name] = node
            return true
        }
        guard inserted else {
            throw SQLError(.invalidConfiguration, message: "cluster \(configuration.name) already has a node named \(name)")
        }
        announce.yield(node)
        logger.debug("node added", metadata: ["cluster": "\(configuration.name)", "node": "\(name)"])
    }

    /// Removes a node: no new work goes to it, its background checks stop,
    /// statements running on it finish, and connections on it move to other
    /// nodes before their next statement (or, in a transaction, fail with
    /// `SQLError.Code.nodeChanged`). Returns whether there was such a node.
    @discardableResult
    public func removeNode(_ name: String) -> Bool {
        guard let node = state.withLock({ $0.nodes.removeValue(forKey: name) }) else { return false }
        node.markRemoved()
        logger.debug("node removed", metadata: ["cluster": "\(configuration.name)", "node": "\(name)"])
        return true
    }

    /// The nodes' names, sorted.
    public func nodes() -> [String] { state.withLock { $0.nodes.keys.sorted() } }

    var sortedNodes: [ClusterNode] {
        state.withLock { $0.nodes.values.sorted { $0.name < $1.name } }
    }

    /// Claims the one run; `false` when ``run()`` is already running or has run.
    func markRunning() -> Bool {
        state.withLock { state -> Bool in
            defer { state.running = true }
            return !state.running
        }
    }

    /// Every node, as added (the nodes present before ``run()`` are buffered).
    var addedNodes: AsyncStream<ClusterNode> { added }

    // MARK: opening

    /// Opens a connection on the best node for the DSN's target role and replication limits
    /// (see the type's documentation).
    ///
    /// - Throws: `SQLError.Code.invalidConfiguration` for a DSN it cannot read,
    ///   `SQLError.Code.noEligibleNode` when no node can serve the request now.
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        try await connect(to: dsn, sessionSetup: nil)
    }

    /// Opens a connection as ``connect(to:)`` does; `setup` runs on its node connection
    /// before its first use, and again on each node connection it moves to later.
    public func connect(to dsn: String, onConnect setup: SQLSessionSetup) async throws(SQLError) -> any SQLConnection {
        try await connect(to: dsn, sessionSetup: setup)
    }

    private func connect(to dsn: String, sessionSetup: SQLSessionSetup?) async throws(SQLError) -> any SQLConnection {
        let request = try OpenRequest(dsn: dsn, defaults: configuration)
        let binding = try await open(request, excluding: [], sessionSetup: sessionSetup)
        return ClusterConnection(cluster: self, request: request, binding: binding, sessionSetup: sessionSetup)
    }

    /// The newest write position the checks read on a primary.
    var primaryPosition: Int64? { state.withLock { $0.writePositions.latest } }

    /// Takes in a primary's write position read by a check.
    func recordPrimaryPosition(_ position: Int64) {
        let now = clock.now
        state.withLock { $0.writePositions.record(position, at: now) }
    }

    /// How long ago the checks first saw a primary past `replayed`.
    func lag(ofReplayed replayed: Int64) -> Duration {
        let now = clock.now
        return state.withLock { $0.writePositions.lag(ofReplayed: replayed, at: now) }
    }

    /// Opens a node connection for `request`, on a node outside `excluded`, and runs
    /// `sessionSetup` on it (a failure closes it and is thrown, counting against no node).
    func open(
        _ request: OpenRequest, excluding excluded: Set<String>, sessionSetup: SQLSessionSetup?
    ) async throws(SQLError) -> NodeBinding {
        let binding = try await open(request, excluding: excluded)
        guard let sessionSetup else { return binding }
        do throws(SQLError) {
            return NodeBinding(node: binding.node, connection: try await sessionSetup.prepare(binding.connection))
        } catch {
            throw error.on(node: binding.node.name)
        }
    }

    /// Opens a node connection for `request`, on a node outside `excluded`.
    private func open(_ request: OpenRequest, excluding excluded: Set<String>) async throws(SQLError) -> NodeBinding {
        let target = request.target
        let all = sortedNodes
        guard !all.isEmpty else { throw SQLError(.noNodes, message: "cluster \(configuration.name) has no nodes") }
        let up = all.filter { !excluded.contains($0.name) && $0.breaker.state == .closed }
        let limited = request.limits.isLimited
        let live = limited ? up.filter { request.limits.admits($0.lag) } : up
        var eligible = live.filter { target.accepts($0.role) || $0.role == .unknown }
        var verifyAll = false
        // Nodes of the right role that only lag are why nothing is eligible: no reason to doubt the roles.
        if eligible.isEmpty, !live.isEmpty,
            !limited || !up.contains(where: { target.accepts($0.role) && !request.limits.admits($0.lag) })
        {
            // Roles may be stale (a standby just promoted): check them on new connections.
            eligible = live
            verifyAll = true
        }
        if !eligible.contains(where: { target.accepts($0.role) }) {
            // Every node known to serve the target is ejected. Without run() no prober brings one
            // back: those whose probe delay has passed get a trial (their breakers' half-open
            // state), each open one more, with their roles checked anew.
            let trials = all.filter { !excluded.contains($0.name) && (!limited || request.limits.admits($0.lag)) && $0.breaker.admitsTrial }
            if !trials.isEmpty {
                eligible += trials
                verifyAll = true
            }
        }
        guard !eligible.isEmpty else {
            let list = all.map { node in
                NodeFailure(
                    node: node.name,
                    error: SQLError(
                        .noEligibleNode,
                        message: excluded.contains(node.name)
                            ? "already failed for this statement"
                            : request.limits.violation(by: node.lag).map { "lagging: \($0)" }
                                ?? "\(node.health.rawValue), role \(node.role.rawValue)",
                        node: node.name))
            }
            let failures = NodeFailures(failures: list)
            // Failing fast must not mean failing without suspending: a caller
            // that retries in a loop would otherwise never give its thread
            // back, and on 2 cores the probes that re-admit the nodes starve.
            await Task.yield()
            throw SQLError(
                .noEligibleNode, message: "no node of cluster \(configuration.name) can serve \(target) now: \(failures)",
                underlying: failures)
        }
        let turn = state.withLock { state -> Int in
            state.turn &+= 1
            return state.turn
        }
        let candidates = eligible.enumerated().map { $0.element.candidate(index: $0.offset, preferStandby: target == .preferStandby) }
        let order = NodeSelection.order(candidates, strategy: configuration.strategy, turn: turn)
        let strategy = configuration.strategy
        let hedgeDelay = configuration.hedgeDelay
        // prefer-standby (libpq's meaning): the other nodes are a fallback for when
        // every standby failed, never a hedge against a standby that is only slow.
        let lastPreferred = order.last { candidates[$0].preferred }.map { eligible[$0].name }
        let race = OpenRace(
            nodes: order.map { eligible[$0] }, target: target, verifyRole: verifyAll,
            stagger: { node in
                if node.name == lastPreferred { return .untilAllFailed }
                guard strategy != .race else { return .none }
                guard let connect = node.connectLatency else { return .hedge(hedgeDelay) }
                return .hedge(min(max(.seconds(connect * 3), .milliseconds(5)), hedgeDelay))
            },
            timeout: SQLDeadline.remaining(within: configuration.openTimeout) ?? configuration.openTimeout, clock: clock)
        guard let tracer else { return try await race.run() }
        return try await traceOpen(race, target: target, tracer: tracer)
    }

    /// Runs `race` in a `clustersql.open` span: the cluster, the target, the nodes in the order
    /// they would be tried, those that were, and the one that won (or the error).
    private func traceOpen(_ race: OpenRace, target: TargetRole, tracer: any Tracer) async throws(SQLError) -> NodeBinding {
        let span = tracer.startSpan("clustersql.open", ofKind: .internal)
        defer { span.end() }
        let candidates = race.nodes.map(\.name)
        span.updateAttributes { attributes in
            attributes["clustersql.cluster"] = configuration.name
            attributes["clustersql.target"] = target.rawValue
            attributes["clustersql.candidates"] = candidates
        }
        var launched = 0
        do throws(SQLError) {
            let binding = try await race.run(launched: &launched)
            span.updateAttributes { attributes in
                attributes["clustersql.nodes_tried"] = Array(candidates.prefix(launched))
                attributes["clustersql.node"] = binding.node.name
            }
            return binding
        } catch {
            span.attributes["clustersql.nodes_tried"] = Array(candidates.prefix(launched))
            ClientSpans.recordFailure(on: span, type: error.code.description)
            throw error
        }
    }

    // MARK: idempotency

    /// Runs `body` with every statement in it marked idempotent: a statement
    /// whose node fails after it was sent is run again on another node.
    /// Use it only for statements that are safe to run twice.
    public static func idempotent<T>(_ body: () async throws -> T) async rethrows -> T {
        try await $statementsAreIdempotent.withValue(true) { try await body() }
    }

    // MARK: figures

    /// A snapshot of every node's figures.
    public func statistics() -> ClusterStatistics {
        ClusterStatistics(
            cluster: configuration.name, firstInstantiated: firstInstantiated, nodes: sortedNodes.map { $0.statistics() })
    }
}

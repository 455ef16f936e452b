import ConnectionKit
import Metrics

/// One master name a ``SentinelClient`` follows: its ``MasterTracker``, the
/// leases waiting for a master, its replicas, its counters and the wake-up of
/// its checking loop.
final class FollowedMaster: Sendable {
    typealias Serving = MasterTracker<RedisPool>.Serving

    private struct State: Sendable {
        var tracker: MasterTracker<RedisPool>
        var nextWaiter = 0
        /// When the last `+switch-master` for this name arrived, until the switch is made.
        var announcedAt: ContinuousClock.Instant?
        /// When the last switch to another master was made before any announcement of it arrived.
        var untimedSwitchAt: ContinuousClock.Instant?
        /// Why no master was found, as last logged; `nil` once one is served.
        var loggedProblem: String?
    }

    let name: String
    let replicas: ReplicaSet
    let counters: SentinelCounters
    /// Wakes the checking loop for a check now (an event, a `READONLY`, a failed command).
    let wakeup = LoopWakeup(clock: ContinuousClock())
    private let state: Locked<State>
    /// Leases waiting for a master, by the tracker's waiter number.
    private let waiters = ParkedWaiters<MasterTracker<RedisPool>.WaiterResult>()

    init(name: String, balancing: ReplicaBalancing, metrics: any MetricsFactory) {
        self.name = name
        self.replicas = ReplicaSet(balancing: balancing)
        self.counters = SentinelCounters(master: name, factory: metrics)
        self.state = Locked(State(tracker: MasterTracker(name: name)))
    }

    /// The master served now, without waiting.
    var serving: Serving? { state.withLock { $0.tracker.serving } }

    /// Keeps why no master was found (`nil`: one is served); returns whether that
    /// changed, so that a state change is logged and not every poll.
    func noteProblem(_ problem: String?) -> Bool {
        state.withLock { state in
            defer { state.loggedProblem = problem }
            return state.loggedProblem != problem
        }
    }

    /// Whether no master is served and the loop should look for one.
    var needsResolution: Bool { state.withLock { $0.tracker.needsResolution } }

    /// The master served now, or the next one verified within `wait`; fails
    /// typed when the client closes, the name is unknown, no sentinel answers,
    /// or the wait passes (``RedisError/Code/failoverInProgress``). Cancellable.
    @inline(__always)
    func master(wait: Duration) async throws(RedisError) -> Serving {
        let (decision, waiter) = state.withLock { state -> (MasterTracker<RedisPool>.LeaseDecision, Int) in
            state.nextWaiter += 1
            return (state.tracker.lease(waiter: state.nextWaiter), state.nextWaiter)
        }
        switch decision {
        case .use(let serving): return serving
        case .fail(let error): throw error
        case .wait: return try await waitForMaster(waiter, wait: wait)
        }
    }

    private func waitForMaster(_ waiter: Int, wait: Duration) async throws(RedisError) -> Serving {
        wakeup.wake()
        let result = await withTaskGroup(of: MasterTracker<RedisPool>.WaiterResult?.self) { group in
            group.addTask {
                try? await Task.sleep(for: wait)
                self.giveUp(waiter, wait: wait)
                return nil
            }
            group.addTask {
                await self.waiters.park(waiter) {
                    self.state.withLock { $0.tracker.waiterGaveUp(waiter, wait: wait) }.map { .failure($0) }
                }
            }
            let first = await group.next()!
            group.cancelAll()
            if let first { return first }
            return (await group.next()!)!
        }
        switch result {
        case .master(let serving): return serving
        case .failure(let error): throw error
        }
    }

    private func giveUp(_ waiter: Int, wait: Duration) {
        let error = state.withLock { $0.tracker.waiterGaveUp(waiter, wait: wait) }
        if let error { resume([(waiter, .failure(error))]) }
    }

    /// Runs an event of the tracker under the lock, then its actions: waiters
    /// resumed, retired pools' connections all closed, the switch counted.
    func apply(_ event: (inout MasterTracker<RedisPool>) -> MasterTracker<RedisPool>.Actions) async -> MasterTracker<RedisPool>.Actions {
        let now = ContinuousClock.now
        let (actions, announcedAt) = state.withLock { state in
            let actions = event(&state.tracker)
            let announcedAt = actions.switched == nil ? nil : state.announcedAt
            if let switched = actions.switched {
                state.announcedAt = nil
                let failover = switched.from.map { $0 != switched.to } ?? false
                state.untimedSwitchAt = failover && announcedAt == nil ? now : nil
            }
            return (actions, announcedAt)
        }
        resume(actions.resume)
        if let switched = actions.switched, let from = switched.from, from != switched.to {
            counters.failoverFollowed(after: announcedAt.map { $0.duration(to: now) })
        }
        for pool in actions.retire { counters.oldConnectionsClosed(await pool.closeAllConnections()) }
        if let spare = actions.discard { await spare.close() }
        return actions
    }

    /// Remembers when a `+switch-master` arrived, to time the switch it announces.
    func announced(at instant: ContinuousClock.Instant) {
        state.withLock { if $0.announcedAt == nil { $0.announcedAt = instant } }
    }

    /// A `+switch-master` arrived for the master served already: when the client's
    /// own check made that switch first, its time to follow is zero.
    func announcedAfterSwitch() {
        let untimed = state.withLock { state -> Bool in
            defer { state.untimedSwitchAt = nil }
            return state.untimedSwitchAt != nil
        }
        if untimed { counters.followTimed(.zero) }
    }

    /// Figures for ``SentinelClient/statistics()``.
    func statistics() -> SentinelMasterStatistics {
        let serving = self.serving
        let figures = counters.figures.withLock { $0 }
        return SentinelMasterStatistics(
            name: name, master: serving?.address, generation: serving?.generation ?? 0,
            replicas: replicas.addresses, failoversFollowed: figures.failovers,
            lastFollowMilliseconds: figures.lastFollow.map(\.inMilliseconds),
            readOnlyReplies: figures.readOnly, oldMasterConnectionsClosed: figures.oldClosed, sentinelErrors: figures.sentinelErrors,
            sentinels: figures.reports, pool: serving?.pool.statistics)
    }

    private func resume(_ results: [(waiter: Int, result: MasterTracker<RedisPool>.WaiterResult)]) {
        for (waiter, result) in results { waiters.resume(waiter, with: result) }
    }
}

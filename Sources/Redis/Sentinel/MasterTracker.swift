/// Which master of one master name the client serves, without I/O: every event
/// returns what the shell must do once it has released its lock.
///
/// States:
/// - `resolving`: no verified master (at start, after the master was found
///   demoted, or while it refuses connections); leases wait, bounded by the
///   shell, for `verified`. A master that only refused connections is kept
///   aside as the *suspect*: verified again, it is served again with its pool
///   and connections intact; replaced, its pool is retired.
/// - `serving`: a master whose `ROLE` said `master`, with its pool, the config
///   epoch the sentinels named it with (when known) and a generation number
///   that grows with every verification; a lease remembers its generation, so
///   news about an older generation changes nothing.
/// - `closed`: final.
///
/// Events that rest on an observation (`verified` after a check) carry the
/// generation the shell saw; when another event came first, they change nothing.
///
/// `Pool` is the shell's pool type (a number in tests).
struct MasterTracker<Pool: Sendable>: Sendable {
    struct Serving: Sendable {
        var address: SentinelAddress
        var generation: Int
        var pool: Pool
        /// The sentinels' config epoch for this master; `nil` when it came from an announcement.
        var epoch: Int?
    }

    enum State: Sendable {
        case resolving
        case serving(Serving)
        case closed
    }

    /// What a waiting lease receives.
    enum WaiterResult: Sendable {
        case master(Serving)
        case failure(RedisError)
    }

    /// Work for the shell.
    struct Actions: Sendable {
        /// Waiters to resume.
        var resume: [(waiter: Int, result: WaiterResult)] = []
        /// Pools of demoted or replaced masters: close every connection they have, borrowed ones too.
        var retire: [Pool] = []
        /// A pool that was made for nothing (the address is already served, another event came first, or the client closed): close it.
        var discard: Pool?
        /// The switch that happened, for logs and metrics: from the master served
        /// before (`nil` at the first discovery; the same address when a demoted or
        /// unreachable master is verified again) to the new one.
        var switched: (from: SentinelAddress?, to: SentinelAddress)?
    }

    /// What ``lease(waiter:)`` decided.
    enum LeaseDecision: Sendable {
        case use(Serving)
        case wait
        case fail(RedisError)
    }

    let name: String
    private(set) var state: State = .resolving
    private var generations = 0
    private var waiters: [Int] = []
    /// Why the last resolution found no master, for waiters that time out.
    private(set) var lastProblem: RedisError?
    /// The master served before the last demotion, so the next verification tells a failover from a comeback.
    private var lastServed: SentinelAddress?
    /// A master that refused connections, kept with its pool while resolving.
    private var suspect: Serving?

    init(name: String) { self.name = name }

    /// The master served now, if any.
    var serving: Serving? {
        if case .serving(let serving) = state { serving } else { nil }
    }

    /// A lease asks for the master: use it, wait for one, or fail when closed.
    mutating func lease(waiter: Int) -> LeaseDecision {
        switch state {
        case .serving(let serving):
            return .use(serving)
        case .resolving:
            waiters.append(waiter)
            return .wait
        case .closed:
            return .fail(Self.closedError(name))
        }
    }

    /// A waiting lease gave up (its wait ended or it was cancelled); returns the
    /// error to fail it with, or `nil` when it was already resumed.
    mutating func waiterGaveUp(_ waiter: Int, wait: Duration) -> RedisError? {
        guard let index = waiters.firstIndex(of: waiter) else { return nil }
        waiters.remove(at: index)
        if let lastProblem, lastProblem.code != .failoverInProgress { return lastProblem }
        var error = RedisError(.failoverInProgress, message: "no master of \(name) was verified within \(wait)")
        error.fromSentinel = true
        if let lastProblem { error.message += ": \(lastProblem.message)" }
        return error
    }

    /// `address` answered `ROLE` as master; `pool` was made for it; `epoch` is the
    /// config epoch the sentinels named it with. `observed` is the generation served
    /// when the check began (`nil`: none was): if that changed, nothing happens.
    mutating func verified(_ address: SentinelAddress, pool: Pool, epoch: Int?, observed: Int?) -> Actions {
        var actions = Actions()
        guard serving?.generation == observed, !isClosed else {
            actions.discard = pool
            return actions
        }
        lastProblem = nil
        switch state {
        case .closed:
            actions.discard = pool
        case .serving(var current) where current.address == address:
            actions.discard = pool
            if let epoch, epoch > (current.epoch ?? -1) {
                current.epoch = epoch
                state = .serving(current)
            }
        case .serving(let current):
            generations += 1
            state = .serving(Serving(address: address, generation: generations, pool: pool, epoch: epoch))
            actions.retire.append(current.pool)
            actions.switched = (current.address, address)
        case .resolving:
            generations += 1
            var servedPool = pool
            if let suspect, suspect.address == address {
                servedPool = suspect.pool  // the same master answers again: keep its connections
                actions.discard = pool
            } else if let suspect {
                actions.retire.append(suspect.pool)
            }
            suspect = nil
            let next = Serving(address: address, generation: generations, pool: servedPool, epoch: epoch)
            state = .serving(next)
            actions.switched = (lastServed, address)
            actions.resume = waiters.map { ($0, .master(next)) }
            waiters.removeAll()
        }
        return actions
    }

    /// The sentinels name the served master with a newer config epoch: remember it.
    mutating func confirmed(_ address: SentinelAddress, epoch: Int, observed: Int) -> Actions {
        if case .serving(var current) = state, current.generation == observed, current.address == address, epoch > (current.epoch ?? -1) {
            current.epoch = epoch
            state = .serving(current)
        }
        return Actions()
    }

    /// Generation `generation`'s master is no longer one (`ROLE` said replica, or it
    /// answered `READONLY`): its connections go, leases wait for the next master.
    mutating func demoted(generation: Int) -> Actions {
        var actions = Actions()
        if case .serving(let current) = state, current.generation == generation {
            state = .resolving
            lastServed = current.address
            actions.retire.append(current.pool)
        } else if let suspect, suspect.generation == generation {
            actions.retire.append(suspect.pool)
            self.suspect = nil
        }
        return actions
    }

    /// Generation `generation`'s master refused a connection: leases wait for the
    /// next master verified; its connections stay until another one is.
    mutating func unreachable(generation: Int) -> Actions {
        guard case .serving(let current) = state, current.generation == generation else { return Actions() }
        state = .resolving
        lastServed = current.address
        suspect = current
        return Actions()
    }

    /// A resolution found no master. Problems that no wait can cure (the sentinels
    /// do not know the name, or none can be reached) fail the waiters at once.
    mutating func resolutionFailed(_ problem: RedisError) -> Actions {
        lastProblem = problem
        guard case .resolving = state, problem.code == .masterUnknown || problem.code == .sentinelsUnreachable else { return Actions() }
        var actions = Actions()
        actions.resume = waiters.map { ($0, .failure(problem)) }
        waiters.removeAll()
        return actions
    }

    /// The client closes: waiters fail, the master's connections go.
    mutating func close() -> Actions {
        var actions = Actions()
        if case .serving(let current) = state { actions.retire.append(current.pool) }
        if let suspect { actions.retire.append(suspect.pool) }
        suspect = nil
        state = .closed
        actions.resume = waiters.map { ($0, .failure(Self.closedError(name))) }
        waiters.removeAll()
        return actions
    }

    /// Whether the shell should look for a master now rather than at the next tick.
    var needsResolution: Bool {
        if case .resolving = state { true } else { false }
    }

    private var isClosed: Bool {
        if case .closed = state { true } else { false }
    }

    static func closedError(_ name: String) -> RedisError {
        RedisError(.clientClosed, message: "the sentinel client of \(name) is closed")
    }
}

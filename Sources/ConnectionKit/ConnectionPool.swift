import Logging
import ServiceLifecycle

// `@usableFromInline` on the type too: without it, its `@inlinable package` members are
// silently neither inlined nor specialized in the modules that call them (measured: a Redis
// GET cost 38 % more client CPU, a PostgreSQL point select 30 %).
/// A pool of connections with every option of radix's pool and the limits of
/// database/sql and pgxpool (see ``ConnectionPoolConfiguration``).
///
/// Borrow with `withConnection(_:)` or ``borrow()``/``release(_:broken:)``.
/// A borrower that finds no idle connection dials one itself (on demand); past
/// ``ConnectionPoolConfiguration/maxOpen`` or the create limit it waits in
/// FIFO order. ``run()`` (a `Service`) drives everything that happens in time:
/// get timeouts, token refills, overflow draining, pings, lifetimes, warm-up.
/// Without `run()`, a borrow that would have to wait fails at once with
/// ``ConnectionKitError/Code/notRunning`` rather than risk waiting forever.
@usableFromInline
package final class ConnectionPool<Connection: Sendable, PoolClock: Clock, DialFailure: Error>: Service, Sendable
where PoolClock.Duration == Duration, PoolClock.Instant: Sendable {
    /// A borrowed connection; give it back with ``release(_:broken:)``.
    @usableFromInline package typealias Lease = PooledConnection<Connection, PoolClock.Instant>
    @usableFromInline typealias Machine = PoolStateMachine<Connection, PoolClock.Instant>

    @usableFromInline
    struct State: Sendable {
        @usableFromInline var machine: Machine
        @usableFromInline var running = false
        @usableFromInline var stopRequested = false

        @usableFromInline
        init(machine: Machine) { self.machine = machine }
    }

    /// The configuration.
    @usableFromInline package let configuration: ConnectionPoolConfiguration
    @usableFromInline let lifecycle: ConnectionLifecycle<Connection, DialFailure>
    @usableFromInline let clock: PoolClock
    @usableFromInline let observer: any ConnectionObserver
    private let logger: Logger
    @usableFromInline let state: Locked<State>
    private let wakeup: LoopWakeup<PoolClock>
    /// Borrowers waiting for their turn, by the machine's waiter number.
    @usableFromInline let waiters = ParkedWaiters<Machine.WaiterResult>()

    /// Creates a pool; nothing is dialed until the first borrow or ``run()``'s warm-up.
    @usableFromInline package init(
        configuration: ConnectionPoolConfiguration,
        lifecycle: ConnectionLifecycle<Connection, DialFailure>,
        clock: PoolClock,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.pool"),
        seed: UInt64? = nil
    ) {
        self.configuration = configuration
        self.lifecycle = lifecycle
        self.clock = clock
        self.observer = observer
        self.logger = logger
        self.state = Locked(State(machine: Machine(configuration: configuration, now: clock.now, seed: seed)))
        self.wakeup = LoopWakeup(clock: clock)
    }

    // MARK: borrowing

    /// Borrows a connection, runs `body`, and returns it; an error for which `isBroken` holds
    /// drops the connection instead of returning it.
    @inlinable
    package func withConnection<T>(
        isBroken: (DialFailure) -> Bool = { _ in true },
        _ body: (Connection) async throws(DialFailure) -> T
    ) async throws(ManagedFailure<DialFailure>) -> T {
        let lease = try await borrow()
        do throws(DialFailure) {
            let result = try await body(lease.connection)
            await release(lease, broken: false)
            return result
        } catch {
            await release(lease, broken: isBroken(error))
            throw .failed(error)
        }
    }

    /// Borrows a connection: an idle one, a new one, or one handed over after a wait. Throws the
    /// pool's refusal (closed, timed out, not running, cancelled) or the dial's own error.
    /// `limit` shortens the configured wait for this borrow (a caller's deadline).
    @inlinable
    package func borrow(waitingAtMost limit: Duration? = nil) async throws(ManagedFailure<DialFailure>) -> Lease {
        let started = clock.now
        var closing: [(entry: Lease, reason: CloseReason)] = []
        let (decision, wake) = state.withLock { s in
            (s.machine.borrow(now: started, canWait: s.running, waitingAtMost: limit, closing: &closing), s.machine.takeWakeRequest())
        }
        if !closing.isEmpty { await closeAll(closing) }
        if wake { wakeLoop() }  // a wait to time out, or a warm-up dial (minIdle) the borrow made due
        switch decision {
        case .use(let lease):
            observer.borrowed(waited: .zero)
            return lease
        case .create:
            return try await dialForCaller(started: started)
        case .fail(let error):
            throw .refused(error)
        case .wait(let waiter):
            let result = await waitForTurn(waiter)
            switch result {
            case .connection(let lease):
                observer.borrowed(waited: started.duration(to: clock.now))
                return lease
            case .create:
                return try await dialForCaller(started: started)
            case .failure(let error):
                if error.code == .poolTimeout { observer.timedOut() }
                throw .refused(error)
            }
        }
    }

    /// Returns a borrowed connection. `broken: true` closes it (it saw a
    /// connection-class error) so it is never handed out again.
    @inlinable
    package func release(_ lease: Lease, broken: Bool = false) async {
        await release(lease, closing: broken ? .broken : nil)
    }

    /// Returns a borrowed connection, closing it for `reason` instead of keeping
    /// it when one is given (``CloseReason/dirty`` for a connection that is not
    /// as clean as a new one), so it is never handed out again.
    @inlinable
    package func release(_ lease: Lease, closing reason: CloseReason?) async {
        let now = clock.now
        let (actions, wake) = state.withLock { s in
            (s.machine.release(lease, closing: reason, now: now), s.machine.takeWakeRequest())
        }
        if wake { wakeLoop() }
        if !actions.isEmpty { await perform(actions) }
    }

    /// Counts a connection its borrower left in a changed session and that was reset before
    /// it is released (``PoolStatistics/resets``).
    @usableFromInline package func recordReset() {
        state.withLock { $0.machine.statistics.resets += 1 }
    }

    // MARK: management

    /// Whether ``run()`` is active (waits can be timed out).
    @usableFromInline package var isRunning: Bool { state.withLock { $0.running } }

    /// Idle connections ready to borrow (radix's `Avail`).
    @usableFromInline package var available: Int { state.withLock { $0.machine.available } }

    /// Current figures and totals.
    @usableFromInline package var statistics: PoolStatistics { state.withLock { $0.machine.stats } }

    /// Closes every idle connection; the pool stays usable (radix's `Empty`). Safe to call repeatedly.
    @usableFromInline package func empty() async {
        let actions = state.withLock { $0.machine.empty() }
        await perform(actions)
    }

    /// Shuts the pool down: waiters fail with ``ConnectionKitError/Code/shutdown``,
    /// idle connections close now and borrowed ones when returned, ``run()`` returns.
    /// Safe to call repeatedly.
    @usableFromInline package func close() async {
        let actions = state.withLock { $0.machine.shutdown() }
        wakeLoop()
        await perform(actions)
    }

    /// Drives the pool's timers until ``close()``, graceful shutdown or cancellation.
    @usableFromInline package func run() async throws {
        let alreadyRunning = state.withLock { s -> Bool in
            defer { s.running = true }
            return s.running
        }
        precondition(!alreadyRunning, "ConnectionPool.run() must be called once")
        defer { state.withLock { $0.running = false } }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    await self.timerLoop(group: &group)
                }
            } onCancel: {
                self.requestStop()
            }
        } onGracefulShutdown: {
            self.requestStop()
        }
        await close()
    }

    // MARK: internals

    private func requestStop() {
        state.withLock { $0.stopRequested = true }
        wakeLoop()
    }

    private func timerLoop(group: inout DiscardingTaskGroup) async {
        while true {
            let now = clock.now
            let (actions, next, stop) = state.withLock { s in
                let (actions, next) = s.machine.tick(now: now)
                return (actions, next, s.machine.isClosed || s.stopRequested)
            }
            if stop { return }
            resumeWaiters(actions.resume)
            for (entry, reason) in actions.close {
                group.addTask { await self.closeOne(entry.connection, reason) }
            }
            for entry in actions.ping { group.addTask { await self.ping(entry) } }
            for _ in 0..<actions.dials { group.addTask { await self.dialInBackground() } }
            await wakeup.sleep(until: next)
        }
    }

    @usableFromInline func wakeLoop() { wakeup.wake() }

    @usableFromInline func waitForTurn(_ waiter: Int) async -> Machine.WaiterResult {
        await waiters.park(waiter) { [state] in
            // The machine decides: a waiter it already served keeps its connection, on its way.
            state.withLock { $0.machine.cancelWaiter(waiter) } ? .failure(self.cancelledError()) : nil
        }
    }

    private func cancelledError() -> ConnectionKitError {
        ConnectionKitError(.cancelled, source: configuration.name, message: "the waiting task was cancelled")
    }

    /// Hands results to waiters (a waiter that has not parked yet finds its result when it does).
    private func resumeWaiters(_ results: [(waiter: Int, result: Machine.WaiterResult)]) {
        for (waiter, result) in results { waiters.resume(waiter, with: result) }
    }

    @usableFromInline func dialForCaller(started: PoolClock.Instant) async throws(ManagedFailure<DialFailure>) -> Lease {
        let connection: Connection
        do throws(DialFailure) {
            connection = try await lifecycle.dial()
        } catch {
            observer.dialFailed(error)
            let actions = state.withLock { $0.machine.dialFailed(forCaller: true, now: clock.now) }
            await perform(actions)
            throw .failed(error)
        }
        observer.opened()
        let now = clock.now
        let (lease, actions) = state.withLock { $0.machine.dialSucceeded(connection, forCaller: true, now: now) }
        await perform(actions)
        observer.borrowed(waited: started.duration(to: now))
        return lease
    }

    private func dialInBackground() async {
        do {
            let connection = try await lifecycle.dial()
            observer.opened()
            let now = clock.now
            let (_, actions) = state.withLock { $0.machine.dialSucceeded(connection, forCaller: false, now: now) }
            await perform(actions)
        } catch {
            observer.dialFailed(error)
            logger.debug("warm-up dial failed", metadata: ["pool": "\(configuration.name)"])
            let actions = state.withLock { $0.machine.dialFailed(forCaller: false, now: clock.now) }
            await perform(actions)
        }
    }

    private func ping(_ entry: Lease) async {
        var ok = true
        if let ping = lifecycle.ping {
            do { try await ping(entry.connection) } catch { ok = false }
        }
        let actions = state.withLock { $0.machine.pingFinished(entry, ok: ok, now: clock.now) }
        await perform(actions)
    }

    @usableFromInline func perform(_ actions: Machine.Actions) async {
        resumeWaiters(actions.resume)
        await closeAll(actions.close)
        // Background dials only come from tick(), which runs them in the loop's group.
    }

    @usableFromInline func closeAll(_ closing: [(entry: Lease, reason: CloseReason)]) async {
        for (entry, reason) in closing { await closeOne(entry.connection, reason) }
    }

    private func closeOne(_ connection: Connection, _ reason: CloseReason) async {
        await lifecycle.close(connection)
        observer.closed(reason: reason)
    }
}

extension ConnectionPool where PoolClock == ContinuousClock {
    /// Creates a pool on the continuous clock.
    @usableFromInline package convenience init(
        configuration: ConnectionPoolConfiguration,
        lifecycle: ConnectionLifecycle<Connection, DialFailure>,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.pool")
    ) {
        self.init(configuration: configuration, lifecycle: lifecycle, clock: ContinuousClock(), observer: observer, logger: logger)
    }
}

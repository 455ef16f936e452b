import Logging
import ServiceLifecycle
import Synchronization

/// One shared connection, kept up in the background (go-kit's `conn.Manager`).
///
/// ``take()`` returns the current connection or fails at once with
/// ``ConnectionKitError/Code/unavailable`` while it is down (never a hang).
/// A caller that sees a connection-class error hands it back with
/// `reportError(_:)`; the connection is closed and ``run()`` re-dials with
/// backoff (reset after each success). Each connection carries a generation,
/// so an error reported against an older connection never kills a newer one.
/// The first dial is retried like any other. ``close()`` stops everything once.
public final class ConnectionManager<Connection: Sendable, ManagerClock: Clock>: Service, Sendable
where ManagerClock.Duration == Duration, ManagerClock.Instant: Sendable {
    /// The connection handed out, with its generation.
    public struct Lease: Sendable {
        /// The connection.
        public let connection: Connection
        /// Which connection of the manager's life this is (1, 2, ...).
        public let generation: UInt64
    }

    /// The name in errors and logs.
    public let name: String
    private let machine: Locked<ManagerStateMachine<Connection, ManagerClock.Instant>>
    private let lifecycle: ConnectionLifecycle<Connection>
    private let dialTimeout: Duration?
    private let clock: ManagerClock
    private let wakeup: LoopWakeup<ManagerClock>
    private let stopRequested = Atomic<Bool>(false)
    private let observer: any ConnectionObserver
    private let logger: Logger

    /// Creates a manager; ``run()`` dials.
    public init(
        name: String,
        lifecycle: ConnectionLifecycle<Connection>,
        backoff: BackoffPolicy = .goKit,
        dialTimeout: Duration? = .seconds(10),
        clock: ManagerClock,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.manager"),
        seed: UInt64? = nil
    ) {
        self.name = name
        self.machine = Locked(ManagerStateMachine(name: name, backoff: backoff, seed: seed))
        self.lifecycle = lifecycle
        self.dialTimeout = dialTimeout
        self.clock = clock
        self.wakeup = LoopWakeup(clock: clock)
        self.observer = observer
        self.logger = logger
    }

    /// The current connection, or ``ConnectionKitError`` (`unavailable`, `shutdown`) at once.
    public func take() throws(ConnectionKitError) -> Lease {
        switch machine.withLock({ $0.take() }) {
        case .success(let (connection, generation)): return Lease(connection: connection, generation: generation)
        case .failure(let error): throw error
        }
    }

    /// Reports a connection-class error seen on `lease`: its connection is closed
    /// and re-dialed, unless a newer connection has replaced it already.
    public func reportError(_ lease: Lease, error: any Error) async {
        let stale = machine.withLock { $0.reportError(generation: lease.generation, error: "\(error)") }
        guard let stale else { return }
        logger.info("connection lost; reconnecting", metadata: ["manager": "\(name)", "generation": "\(lease.generation)"])
        wakeup.wake()
        await lifecycle.close(stale)
        observer.closed(reason: .broken)
    }

    /// One take/put cycle (go-kit's `Write`): runs `body` on the current connection
    /// and reports its error when `isBroken` says it is connection-class.
    public func withConnection<T>(
        isBroken: (any Error) -> Bool = { _ in true },
        _ body: (Connection) async throws -> T
    ) async throws -> T {
        let lease = try take()
        do {
            return try await body(lease.connection)
        } catch {
            if isBroken(error) { await reportError(lease, error: error) }
            throw error
        }
    }

    /// Closes the manager and its connection; later ``take()`` calls fail with `shutdown`. Idempotent.
    public func close() async {
        let connection = machine.withLock { $0.close() }
        wakeup.wake()
        if let connection {
            await lifecycle.close(connection)
            observer.closed(reason: .shutdown)
        }
    }

    /// Dials, and re-dials with backoff, until ``close()``, graceful shutdown or cancellation.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.loop()
        } onGracefulShutdown: {
            self.stopRequested.store(true, ordering: .relaxed)
            self.wakeup.wake()
        }
        await close()
    }

    private func loop() async {
        var action = machine.withLock { $0.start() }
        while !Task.isCancelled, !stopRequested.load(ordering: .relaxed) {
            switch action {
            case .stop:
                return
            case .dial:
                await dialOnce()
                action = machine.withLock { $0.nextAction() }
            case .sleep(let until):
                await wakeup.sleep(until: until)
                let now = clock.now
                action = machine.withLock { $0.timerFired(now: now) }
            case .idle:
                await wakeup.sleep(until: nil)
                action = machine.withLock { m -> ManagerStateMachine<Connection, ManagerClock.Instant>.LoopAction in
                    if case .dialing = m.state { return .dial }
                    return m.nextAction()
                }
            }
        }
    }

    private func dialOnce() async {
        do {
            let connection = try await dialWithTimeout()
            observer.opened()
            if let late = machine.withLock({ $0.dialSucceeded(connection) }) {
                await lifecycle.close(late)  // closed while dialing
                observer.closed(reason: .shutdown)
            } else {
                logger.debug("connected", metadata: ["manager": "\(name)"])
            }
        } catch {
            observer.dialFailed(error)
            let now = clock.now
            machine.withLock { $0.dialFailed("\(error)", now: now) }
        }
    }

    private func dialWithTimeout() async throws -> Connection {
        guard let dialTimeout else { return try await lifecycle.dial() }
        let deadline = clock.now.advanced(by: dialTimeout)
        return try await withThrowingTaskGroup(of: Connection?.self) { group in
            group.addTask { try await self.lifecycle.dial() }
            group.addTask {
                try await self.clock.sleep(until: deadline, tolerance: nil)
                return nil
            }
            defer { group.cancelAll() }
            let first = try await group.next()!
            if let connection = first { return connection }
            // The timer won. A dial that still completes is closed, never leaked.
            group.cancelAll()
            while let late = try? await group.next() {
                if let connection = late { await lifecycle.close(connection) }
            }
            throw ConnectionKitError(.dialTimeout, source: name, message: "dial took longer than \(formatted(dialTimeout))")
        }
    }
}

extension ConnectionManager where ManagerClock == ContinuousClock {
    /// Creates a manager on the continuous clock.
    public convenience init(
        name: String,
        lifecycle: ConnectionLifecycle<Connection>,
        backoff: BackoffPolicy = .goKit,
        dialTimeout: Duration? = .seconds(10),
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.manager")
    ) {
        self.init(
            name: name, lifecycle: lifecycle, backoff: backoff, dialTimeout: dialTimeout,
            clock: ContinuousClock(), observer: observer, logger: logger)
    }
}

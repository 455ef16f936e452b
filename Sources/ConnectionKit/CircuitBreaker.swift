import Logging
import ServiceLifecycle
import Synchronization

/// Fails fast while a dependency is down, and lets exactly one background
/// prober find out when it is back.
///
/// Connection-class failures (as judged by `isFailure`) are counted in a
/// decaying window; past ``CircuitBreakerConfiguration/failureThreshold`` the
/// breaker opens and ``call(_:)`` fails within microseconds with
/// ``ConnectionKitError/Code/circuitOpen``. ``run()`` (a `Service`) then runs
/// `probe` after jittered backoff delays until one succeeds, which closes the
/// breaker. Without `run()`, the first call after a probe delay is let through
/// as the trial instead. Statement-class errors never count.
package final class CircuitBreaker<BreakerClock: Clock>: Service, Sendable
where BreakerClock.Duration == Duration, BreakerClock.Instant: Sendable {
    /// The name used in errors and logs.
    package let name: String
    private let clock: BreakerClock
    private let machine: Locked<CircuitBreakerStateMachine<BreakerClock.Instant>>
    private let proberRunning = Atomic<Bool>(false)
    private let resetsOnSuccess: Bool
    private let probe: @Sendable () async throws -> Void
    private let isFailure: @Sendable (any Error) -> Bool
    private let observer: any ConnectionObserver
    private let logger: Logger
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    /// Creates a closed breaker.
    ///
    /// - Parameters:
    ///   - name: what the breaker guards, in its errors, logs and metrics.
    ///   - configuration: the failure threshold, decay, open time and probe backoff.
    ///   - clock: the clock of its timers (`ManualClock` in tests).
    ///   - observer: told of every transition (``MetricsObserver`` counts them).
    ///   - logger: where transitions are logged.
    ///   - seed: makes the probe backoff's jitter repeatable; `nil` for a random one.
    ///   - isFailure: whether an error counts (connection-class); others pass through uncounted.
    ///   - probe: checks the dependency (dial and ping); throws when it is still down.
    package init(
        name: String,
        configuration: CircuitBreakerConfiguration = .init(),
        clock: BreakerClock,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.breaker"),
        seed: UInt64? = nil,
        isFailure: @escaping @Sendable (any Error) -> Bool,
        probe: @escaping @Sendable () async throws -> Void
    ) {
        self.name = name
        self.clock = clock
        self.machine = Locked(CircuitBreakerStateMachine(configuration: configuration, seed: seed))
        self.resetsOnSuccess = configuration.resetsOnSuccess
        self.probe = probe
        self.isFailure = isFailure
        self.observer = observer
        self.logger = logger
        (doorbell, ring) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The current state.
    package var state: CircuitState { machine.withLock { $0.circuitState } }

    /// Whether the next ``call(_:)`` would be let through as the trial of an open breaker: no
    /// ``run()`` is probing, and the probe delay has passed. A caller choosing among several
    /// dependencies, all open, uses it to give one of them that trial.
    package var admitsTrial: Bool {
        let now = clock.now
        let proberRunning = proberRunning.load(ordering: .relaxed)
        return machine.withLock { $0.admitsTrial(now: now, proberRunning: proberRunning) }
    }

    /// Runs `body` if the breaker allows it, and counts its failure when `isFailure` says so.
    /// Throws ``ManagedFailure/refused(_:)`` (``ConnectionKitError/Code/circuitOpen``) when the
    /// breaker is open, and `body`'s own error as ``ManagedFailure/failed(_:)``.
    package func call<T, Failure: Error>(_ body: () async throws(Failure) -> T) async throws(ManagedFailure<Failure>) -> T {
        let now = clock.now
        let admission = machine.withLock { $0.admit(now: now, proberRunning: proberRunning.load(ordering: .relaxed)) }
        switch admission {
        case .reject(let since):
            throw .refused(
                ConnectionKitError(
                    .circuitOpen, source: name,
                    message: "open for \(formatted(since.duration(to: now))) after repeated connection failures; failing fast"))
        case .allowTrial:
            transitioned(from: .open, to: .halfOpen)
            do throws(Failure) {
                let result = try await body()
                finishProbe(success: true)
                return result
            } catch {
                finishProbe(success: !isFailure(error))
                throw .failed(error)
            }
        case .allow:
            do throws(Failure) {
                let result = try await body()
                if resetsOnSuccess { machine.withLock { $0.recordSuccess() } }
                return result
            } catch {
                if isFailure(error) { recordFailure() }
                throw .failed(error)
            }
        }
    }

    /// Counts a connection-class failure observed outside ``call(_:)``.
    package func recordFailure() {
        let now = clock.now
        if case .opened = machine.withLock({ $0.recordFailure(now: now) }) {
            logger.info("circuit opened", metadata: ["breaker": "\(name)"])
            transitioned(from: .closed, to: .open)
            ring.yield()
        }
    }

    /// The one prober: waits for the breaker to open, then probes with backoff until it closes.
    /// Returns on graceful shutdown or cancellation.
    package func run() async throws {
        proberRunning.store(true, ordering: .relaxed)
        defer { proberRunning.store(false, ordering: .relaxed) }
        await cancelWhenGracefulShutdown {
            for await _ in self.doorbell {
                await self.probeUntilClosed()
                if Task.isCancelled { return }
            }
        }
    }

    private func probeUntilClosed() async {
        while !Task.isCancelled {
            guard let next = machine.withLock({ $0.nextProbe }) else { return }
            do { try await clock.sleep(until: next, tolerance: nil) } catch { return }
            guard machine.withLock({ $0.startProbe(now: clock.now) }) else { continue }
            transitioned(from: .open, to: .halfOpen)
            let success: Bool
            do {
                try await probe()
                success = true
            } catch {
                success = false
            }
            if finishProbe(success: success) { return }
        }
    }

    /// Returns whether the breaker closed.
    @discardableResult
    private func finishProbe(success: Bool) -> Bool {
        let now = clock.now
        let transition = machine.withLock { $0.probeFinished(success: success, now: now) }
        switch transition {
        case .closed:
            logger.info("circuit closed", metadata: ["breaker": "\(name)"])
            transitioned(from: .halfOpen, to: .closed)
            return true
        case .reopened, .opened:
            transitioned(from: .halfOpen, to: .open)
            // A failed trial call (no prober was running then) leaves the breaker open:
            // a prober that started since must hear of it, or nothing would probe again.
            ring.yield()
            return false
        case nil:
            return false
        }
    }

    private func transitioned(from: CircuitState, to: CircuitState) {
        observer.breakerChanged(from: from, to: to)
    }
}

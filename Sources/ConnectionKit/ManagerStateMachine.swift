/// The logic of a ``ConnectionManager`` without I/O: one shared connection,
/// dialed and re-dialed with backoff, each connection numbered by a generation.
struct ManagerStateMachine<Connection: Sendable, Instant: InstantProtocol & Sendable>: Sendable
where Instant.Duration == Duration {
    enum State: Sendable {
        case idle
        case dialing
        case connected(Connection, generation: UInt64)
        case waiting(until: Instant, lastError: String)
        case closed
    }

    /// What the shell's loop does next.
    enum LoopAction: Sendable {
        /// Dial a connection.
        case dial
        /// Sleep until this instant (or until woken), then call ``timerFired(now:)``.
        case sleep(until: Instant)
        /// Sleep until woken (connected: nothing to do).
        case idle
        /// Stop the loop.
        case stop
    }

    private(set) var state: State = .idle
    private var generation: UInt64 = 0
    private var backoff: Backoff
    private let name: String

    /// Creates a manager machine; nothing is dialed until ``start()``.
    init(name: String, backoff: BackoffPolicy, seed: UInt64? = nil) {
        self.name = name
        self.backoff = Backoff(policy: backoff, seed: seed)
    }

    /// The loop starts: dial unless closed.
    mutating func start() -> LoopAction {
        guard case .idle = state else { return nextAction() }
        state = .dialing
        return .dial
    }

    /// What the loop should do now.
    func nextAction() -> LoopAction {
        switch state {
        case .idle, .dialing: .idle
        case .connected: .idle
        case .waiting(let until, _): .sleep(until: until)
        case .closed: .stop
        }
    }

    /// A dial succeeded. Returns the connection to close at once when the manager closed meanwhile.
    mutating func dialSucceeded(_ connection: Connection) -> Connection? {
        guard case .dialing = state else { return connection }
        generation += 1
        backoff.reset()
        state = .connected(connection, generation: generation)
        return nil
    }

    /// A dial failed (the first one too): wait out the next backoff delay.
    mutating func dialFailed(_ error: String, now: Instant) {
        guard case .dialing = state else { return }
        state = .waiting(until: now.advanced(by: backoff.next()), lastError: error)
    }

    /// The backoff delay may have passed: dial when it has.
    mutating func timerFired(now: Instant) -> LoopAction {
        guard case .waiting(let until, _) = state, until <= now else { return nextAction() }
        state = .dialing
        return .dial
    }

    /// The current connection and its generation, or why there is none.
    func take() -> Result<(Connection, UInt64), ConnectionKitError> {
        switch state {
        case .connected(let connection, let generation):
            return .success((connection, generation))
        case .closed:
            return .failure(ConnectionKitError(.shutdown, source: name, message: "the connection manager is closed"))
        case .waiting(_, let lastError):
            return .failure(
                ConnectionKitError(.unavailable, source: name, message: "down, reconnecting with backoff (last error: \(lastError))"))
        case .idle, .dialing:
            return .failure(ConnectionKitError(.unavailable, source: name, message: "connecting"))
        }
    }

    /// A user of the connection of `generation` saw a connection-class error.
    /// Only the current generation is invalidated (an old connection's error
    /// must not kill its successor). Returns the connection to close.
    mutating func reportError(generation reported: UInt64, error: String) -> Connection? {
        guard case .connected(let connection, let current) = state, current == reported else { return nil }
        state = .dialing
        return connection
    }

    /// Closes the manager; returns the connection to close, if any.
    mutating func close() -> Connection? {
        defer { state = .closed }
        if case .connected(let connection, _) = state { return connection }
        return nil
    }
}

/// A connection owned by a pool, with what the pool knows about it.
@usableFromInline
package struct PooledConnection<Connection: Sendable, Instant: InstantProtocol & Sendable>: Sendable {
    /// The connection itself.
    @usableFromInline package let connection: Connection
    /// The pool's number for it, unique within the pool.
    @usableFromInline package let id: Int
    /// When it was opened.
    @usableFromInline package let createdAt: Instant
    /// When its lifetime ends, if it has a maximum one.
    @usableFromInline package let expiresAt: Instant?
    /// When it was last returned to the pool (the pool's bookkeeping).
    @usableFromInline package var lastUsed: Instant

    @inlinable
    init(connection: Connection, id: Int, createdAt: Instant, expiresAt: Instant?, lastUsed: Instant) {
        self.connection = connection
        self.id = id
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsed = lastUsed
    }
}

/// Counters and gauges of a pool: what is open, in use and waiting now, and totals since it started.
public struct PoolStatistics: Sendable, Hashable, Codable {
    /// Connections open now: idle, overflow, in use and being pinged.
    public var open = 0
    /// Connections borrowed now.
    public var inUse = 0
    /// Idle connections (overflow included).
    public var idle = 0
    /// Dials in progress.
    public var opening = 0
    /// Borrowers waiting now.
    public var waiting = 0
    /// Borrows that had to wait, in total.
    public var waitCount = 0
    /// The total time borrowers waited.
    public var waitDuration: Duration = .zero
    /// Borrows that timed out.
    public var timeouts = 0
    /// Connections opened, in total.
    public var opened = 0
    /// Connections closed, by reason.
    public var closed: [String: Int] = [:]
    /// Connections that came back with their session changed (a Redis `MULTI` or `SELECT`)
    /// and were reset before they were kept.
    public var resets = 0

    /// Creates empty statistics.
    package init() {}
}

/// The pool's logic without I/O: every event takes `now` and returns what the
/// shell must do (hand connections to waiters, close, dial, ping) once it has
/// released its lock. Tested exhaustively with explicit instants.
@usableFromInline struct PoolStateMachine<Connection: Sendable, Instant: InstantProtocol & Sendable>: Sendable
where Instant.Duration == Duration {
    /// A pooled connection of this pool.
    @usableFromInline typealias Entry = PooledConnection<Connection, Instant>

    /// What a waiting borrower receives.
    @usableFromInline enum WaiterResult: Sendable {
        /// A connection to use.
        case connection(Entry)
        /// Permission to dial a connection itself.
        case create
        /// An error (timeout, shutdown).
        case failure(ConnectionKitError)
    }

    /// Work for the shell, to run outside the lock.
    @usableFromInline struct Actions: Sendable {
        /// Waiters to resume, in order.
        @usableFromInline var resume: [(waiter: Int, result: WaiterResult)] = []
        /// Connections to close.
        @usableFromInline var close: [(entry: Entry, reason: CloseReason)] = []
        /// Connections to ping (each comes back through ``pingFinished(_:ok:now:)``).
        @usableFromInline var ping: [Entry] = []
        /// Background dials to start (each ends in ``dialSucceeded(_:forCaller:now:)`` or ``dialFailed(forCaller:)``).
        @usableFromInline var dials = 0

        /// No work.
        @inlinable init() {}

        /// Whether there is nothing to do.
        @inlinable var isEmpty: Bool { resume.isEmpty && close.isEmpty && ping.isEmpty && dials == 0 }
    }

    /// What a borrower does next.
    @usableFromInline enum BorrowDecision: Sendable {
        /// Use this idle connection.
        case use(Entry)
        /// Dial a new connection (capacity and a token were reserved).
        case create
        /// Wait as this waiter; the shell parks it until resumed.
        case wait(waiter: Int)
        /// Fail at once.
        case fail(ConnectionKitError)
    }

    @usableFromInline
    struct Waiter: Sendable {
        @usableFromInline let id: Int
        @usableFromInline let enqueued: Instant
        @usableFromInline let deadline: Instant?

        @inlinable
        init(id: Int, enqueued: Instant, deadline: Instant?) {
            self.id = id
            self.enqueued = enqueued
            self.deadline = deadline
        }
    }

    /// The configuration.
    @usableFromInline let configuration: ConnectionPoolConfiguration
    @usableFromInline var idle: [Entry] = []
    @usableFromInline var overflow: [Entry] = []
    @usableFromInline var waiters: [Waiter] = []
    @usableFromInline var inUse = 0
    @usableFromInline var opening = 0
    @usableFromInline var pinging = 0
    @usableFromInline var tokens: Int
    @usableFromInline var lastRefill: Instant
    @usableFromInline var nextDrain: Instant?
    @usableFromInline var nextPing: Instant
    @usableFromInline var nextWarmUp: Instant
    @usableFromInline var nextConnectionID = 0
    @usableFromInline var nextWaiterID = 0
    @usableFromInline var isShutdown = false
    @usableFromInline var wakeRequested = false
    /// What the last ``tick(now:)`` told the timer loop to sleep until
    /// (`nil`: until woken); `false` before the first tick.
    @usableFromInline var loopScheduled = false
    @usableFromInline var loopWakesAt: Instant?
    @usableFromInline var random: SeededRandom
    @usableFromInline var statistics = PoolStatistics()
    @usableFromInline let pingInterval: Duration?

    /// Creates an empty pool machine at `now`.
    @usableFromInline init(configuration: ConnectionPoolConfiguration, now: Instant, seed: UInt64? = nil) {
        self.configuration = configuration
        self.tokens = configuration.createLimit?.headroom ?? 0
        self.lastRefill = now
        self.pingInterval = configuration.pingInterval.resolved(idleSize: configuration.idleSize)
        self.nextPing = now.advanced(by: pingInterval ?? .zero)
        self.nextWarmUp = now
        self.random = SeededRandom(seed: seed ?? UInt64.random(in: .min ... .max))
    }

    // MARK: borrowing

    /// A borrower asks for a connection. `canWait` is false when nobody runs
    /// the timer loop that would time the wait out.
    @inlinable mutating func borrow(
        now: Instant, canWait: Bool, waitingAtMost limit: Duration? = nil, closing: inout [(entry: Entry, reason: CloseReason)]
    ) -> BorrowDecision {
        if isShutdown { return .fail(shutdownError()) }
        if waiters.isEmpty, let entry = takeIdle(now: now, closing: &closing) {
            inUse += 1
            requestWarmUpIfNeeded(now: now)
            return .use(entry)
        }
        if waiters.isEmpty, reserveCreation(now: now) { return .create }
        guard canWait else {
            return .fail(
                ConnectionKitError(
                    .notRunning, source: configuration.name,
                    message: "no connection is free and the pool's run() is not running to time a wait out (\(figures))"))
        }
        nextWaiterID += 1
        let wait = limit.map { limit in configuration.getTimeout.map { min($0, limit) } ?? limit } ?? configuration.getTimeout
        waiters.append(Waiter(id: nextWaiterID, enqueued: now, deadline: wait.map { now.advanced(by: $0) }))
        wakeRequested = true
        statistics.waitCount += 1
        return .wait(waiter: nextWaiterID)
    }

    /// A borrower returns its connection; `broken` drops it (it saw a connection-class error).
    @inlinable mutating func release(_ entry: Entry, broken: Bool, now: Instant) -> Actions {
        release(entry, closing: broken ? .broken : nil, now: now)
    }

    /// A borrower returns its connection; a `reason` closes it for that reason instead of keeping it.
    @inlinable mutating func release(_ entry: Entry, closing reason: CloseReason?, now: Instant) -> Actions {
        inUse -= 1
        var actions = Actions()
        place(entry, closing: reason, now: now, into: &actions)
        return actions
    }

    /// A caller's or background dial produced a connection. For a caller it is
    /// returned in use; a background one is placed like a returned connection.
    @inlinable mutating func dialSucceeded(
        _ connection: Connection, forCaller: Bool, now: Instant
    ) -> (entry: Entry, actions: Actions) {
        opening -= 1
        nextConnectionID += 1
        statistics.opened += 1
        let expiry = configuration.maxLifetime.map { lifetime -> Instant in
            let spread = configuration.lifetimeJitter
            let factor = spread > 0 ? Double.random(in: (1 - spread)...(1 + spread), using: &random) : 1
            return now.advanced(by: lifetime.scaled(by: factor))
        }
        let entry = Entry(connection: connection, id: nextConnectionID, createdAt: now, expiresAt: expiry, lastUsed: now)
        var actions = Actions()
        if forCaller {
            inUse += 1
        } else {
            place(entry, broken: false, now: now, into: &actions)
        }
        return (entry, actions)
    }

    /// A dial failed; its reserved capacity goes to the next waiter, if any.
    @inlinable mutating func dialFailed(forCaller: Bool, now: Instant) -> Actions {
        opening -= 1
        var actions = Actions()
        serveWaitersWithCapacity(now: now, into: &actions)
        return actions
    }

    /// A waiting borrower was cancelled; returns whether it was still waiting
    /// (if not, a result is already on its way and must be taken).
    @inlinable mutating func cancelWaiter(_ id: Int) -> Bool {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return false }
        waiters.remove(at: index)
        return true
    }

    /// A ping finished; a failed one closes the connection.
    @inlinable mutating func pingFinished(_ entry: Entry, ok: Bool, now: Instant) -> Actions {
        pinging -= 1
        var actions = Actions()
        var pinged = entry
        if ok { pinged.lastUsed = max(pinged.lastUsed, now) }
        place(pinged, broken: !ok, now: now, into: &actions)
        return actions
    }

    // MARK: time

    /// Everything that is due at `now`: waiter timeouts, token refills, overflow
    /// draining, lifetime and idle-time reaping, one ping, one warm-up dial.
    /// Returns the actions and when to call again.
    @inlinable mutating func tick(now: Instant) -> (actions: Actions, next: Instant?) {
        var actions = Actions()
        guard !isShutdown else { return (actions, nil) }
        timeOutWaiters(now: now, into: &actions)
        serveWaitersWithCapacity(now: now, into: &actions)
        drainOverflow(now: now, into: &actions)
        reapIdle(now: now, into: &actions)
        if let interval = pingInterval, now >= nextPing {
            nextPing = now.advanced(by: interval)
            if !idle.isEmpty {
                pinging += 1
                actions.ping.append(idle.removeFirst())  // the least recently used
            }
        }
        if warmUpNeeded, now >= nextWarmUp, waiters.isEmpty, reserveCreation(now: now) {
            nextWarmUp = now.advanced(by: configuration.warmUpInterval)
            actions.dials += 1
        }
        let next = nextDeadline(now: now)
        loopScheduled = true
        loopWakesAt = next
        return (actions, next)
    }

    /// Asks the timer loop to wake only when `candidate` comes before the time
    /// it already sleeps until: under load, connections come and go from an
    /// empty idle list on nearly every release, and waking the loop each time
    /// cost more than the borrow itself.
    @inlinable mutating func requestWake(before candidate: Instant?) {
        guard let candidate else { return }
        if loopScheduled, let wakesAt = loopWakesAt, wakesAt <= candidate { return }
        wakeRequested = true
    }

    /// Wakes the timer loop for a warm-up dial when a borrow or a close left fewer than
    /// ``ConnectionPoolConfiguration/minIdle`` connections idle or on their way. (Not after a
    /// failed dial: a server that is down is not dialed again every warm-up interval.)
    @inlinable mutating func requestWarmUpIfNeeded(now: Instant) {
        guard configuration.minIdle > 0, warmUpNeeded else { return }
        requestWake(before: max(nextWarmUp, now))
    }

    /// The earliest timer an idle `entry` brings: its lifetime, its idle time, the next ping.
    @inlinable func timerDeadline(ofIdle entry: Entry, now: Instant) -> Instant? {
        var earliest = entry.expiresAt
        func consider(_ candidate: Instant) { earliest = earliest.map { min($0, candidate) } ?? candidate }
        if let idleTime = configuration.maxIdleTime { consider(now.advanced(by: idleTime)) }
        if pingInterval != nil { consider(nextPing) }
        return earliest
    }

    /// Closes every idle and overflow connection; the pool stays usable.
    @inlinable mutating func empty() -> Actions {
        var actions = Actions()
        for entry in idle + overflow { actions.close.append((entry, .emptied)) }
        count(actions.close)
        idle.removeAll()
        overflow.removeAll()
        nextDrain = nil
        return actions
    }

    /// Shuts down: idle connections close, waiters fail, later returns close.
    @inlinable mutating func shutdown() -> Actions {
        var actions = Actions()
        guard !isShutdown else { return actions }
        isShutdown = true
        for entry in idle + overflow { actions.close.append((entry, .shutdown)) }
        count(actions.close)
        idle.removeAll()
        overflow.removeAll()
        for waiter in waiters { actions.resume.append((waiter.id, .failure(shutdownError()))) }
        waiters.removeAll()
        return actions
    }

    // MARK: reading

    /// Whether an event since the last call moved a timer earlier (a new waiter,
    /// a first idle or overflow connection), so the timer loop should wake now.
    @inlinable mutating func takeWakeRequest() -> Bool {
        defer { wakeRequested = false }
        return wakeRequested
    }

    /// Idle connections ready to borrow, overflow included (radix's `Avail`).
    @inlinable var available: Int { idle.count + overflow.count }

    /// Whether ``shutdown()`` happened.
    @inlinable var isClosed: Bool { isShutdown }

    /// Current figures and totals.
    @inlinable var stats: PoolStatistics {
        var s = statistics
        s.idle = idle.count + overflow.count
        s.inUse = inUse
        s.opening = opening
        s.waiting = waiters.count
        s.open = s.idle + inUse + pinging
        return s
    }

    // MARK: internals

    @inlinable var openCount: Int { idle.count + overflow.count + inUse + opening + pinging }

    @inlinable var figures: String {
        let cap = configuration.maxOpen.map(String.init) ?? "none"
        return "in use \(inUse), idle \(idle.count + overflow.count), opening \(opening), waiting \(waiters.count), cap \(cap)"
    }

    @inlinable func shutdownError() -> ConnectionKitError {
        ConnectionKitError(.shutdown, source: configuration.name, message: "the pool is closed")
    }

    @inlinable var warmUpNeeded: Bool { idle.count + overflow.count + opening + pinging < configuration.minIdle }

    @inlinable var creationLimited: Bool {
        guard let limit = configuration.createLimit else { return false }
        return limit.interval > .zero
    }

    @inlinable mutating func refillTokens(now: Instant) {
        guard let limit = configuration.createLimit, limit.interval > .zero, tokens < limit.headroom else {
            lastRefill = now
            return
        }
        let elapsed = lastRefill.duration(to: now)
        let earned = Int(elapsed / limit.interval)
        guard earned > 0 else { return }
        tokens = min(limit.headroom, tokens + earned)
        lastRefill = tokens == limit.headroom ? now : lastRefill.advanced(by: limit.interval * earned)
    }

    /// Reserves capacity (cap) and a token (create limit) for one dial.
    @inlinable mutating func reserveCreation(now: Instant) -> Bool {
        if let cap = configuration.maxOpen, openCount >= cap { return false }
        if creationLimited {
            refillTokens(now: now)
            guard tokens > 0 else { return false }
            tokens -= 1
        }
        opening += 1
        return true
    }

    @inlinable mutating func takeIdle(now: Instant, closing: inout [(entry: Entry, reason: CloseReason)]) -> Entry? {
        while let entry = idle.popLast() ?? (overflow.isEmpty ? nil : overflow.removeLast()) {
            if let reason = staleness(of: entry, now: now, keepingMinIdle: false) {
                closing.append((entry, reason))
                statistics.closed[reason.rawValue, default: 0] += 1
                continue
            }
            return entry
        }
        return nil
    }

    @inlinable func staleness(of entry: Entry, now: Instant, keepingMinIdle: Bool) -> CloseReason? {
        if let expiry = entry.expiresAt, expiry <= now { return .maxLifetime }
        if let maxIdle = configuration.maxIdleTime, !keepingMinIdle, entry.lastUsed.advanced(by: maxIdle) <= now {
            return .maxIdleTime
        }
        return nil
    }

    /// Where a returned, pinged or background-dialed connection goes.
    @inlinable mutating func place(_ entry: Entry, broken: Bool, now: Instant, into actions: inout Actions) {
        place(entry, closing: broken ? .broken : nil, now: now, into: &actions)
    }

    /// Where a returned, pinged or background-dialed connection goes; `closing` closes it for that reason.
    @inlinable mutating func place(_ entry: Entry, closing: CloseReason?, now: Instant, into actions: inout Actions) {
        var entry = entry
        entry.lastUsed = now
        let reason: CloseReason? =
            isShutdown
            ? .shutdown
            : closing ?? (entry.expiresAt.map { $0 <= now } == true ? .maxLifetime : nil)
        if let reason {
            close(entry, reason, into: &actions)
            serveWaitersWithCapacity(now: now, into: &actions)
            requestWarmUpIfNeeded(now: now)
            return
        }
        if let waiter = waiters.first {
            waiters.removeFirst()
            inUse += 1
            statistics.waitDuration += waiter.enqueued.duration(to: now)
            actions.resume.append((waiter.id, .connection(entry)))
        } else if idle.count < configuration.idleSize {
            if idle.isEmpty { requestWake(before: timerDeadline(ofIdle: entry, now: now)) }
            idle.append(entry)
        } else if let buffer = configuration.overflow, overflow.count < buffer.size {
            if overflow.isEmpty {
                nextDrain = now.advanced(by: buffer.drainInterval)
                wakeRequested = true
            }
            overflow.append(entry)
        } else {
            close(entry, .overflow, into: &actions)
        }
    }

    @inlinable mutating func close(_ entry: Entry, _ reason: CloseReason, into actions: inout Actions) {
        actions.close.append((entry, reason))
        statistics.closed[reason.rawValue, default: 0] += 1
    }

    @inlinable mutating func count(_ closing: [(entry: Entry, reason: CloseReason)]) {
        for (_, reason) in closing { statistics.closed[reason.rawValue, default: 0] += 1 }
    }

    /// Gives waiters permission to dial while capacity and tokens allow.
    @inlinable mutating func serveWaitersWithCapacity(now: Instant, into actions: inout Actions) {
        while let waiter = waiters.first, reserveCreation(now: now) {
            waiters.removeFirst()
            statistics.waitDuration += waiter.enqueued.duration(to: now)
            actions.resume.append((waiter.id, .create))
        }
    }

    @inlinable mutating func timeOutWaiters(now: Instant, into actions: inout Actions) {
        // A waiter's deadline comes from the get timeout or from the borrower's own limit (a deadline).
        while let waiter = waiters.first(where: { $0.deadline.map { $0 <= now } == true }) {
            waiters.removeAll { $0.id == waiter.id }
            statistics.timeouts += 1
            let waited = waiter.enqueued.duration(to: now)
            statistics.waitDuration += waited
            let error = ConnectionKitError(
                .poolTimeout, source: configuration.name,
                message: "no connection within \(formatted(waited)) (\(figures))")
            actions.resume.append((waiter.id, .failure(error)))
        }
    }

    @inlinable mutating func drainOverflow(now: Instant, into actions: inout Actions) {
        guard let buffer = configuration.overflow, let due = nextDrain, now >= due else { return }
        if !overflow.isEmpty { close(overflow.removeFirst(), .overflow, into: &actions) }
        nextDrain = overflow.isEmpty ? nil : now.advanced(by: buffer.drainInterval)
    }

    @inlinable mutating func reapIdle(now: Instant, into actions: inout Actions) {
        var kept: [Entry] = []
        for (index, entry) in idle.enumerated() {
            // The most recently used minIdle connections survive idle-time reaping.
            let protected = idle.count - index <= configuration.minIdle
            if let reason = staleness(of: entry, now: now, keepingMinIdle: protected) {
                close(entry, reason, into: &actions)
            } else {
                kept.append(entry)
            }
        }
        if kept.count != idle.count { idle = kept }
    }

    @inlinable func nextDeadline(now: Instant) -> Instant? {
        var next: Instant?
        func consider(_ candidate: Instant?) {
            guard let candidate, candidate > now else { return }
            next = next.map { min($0, candidate) } ?? candidate
        }
        for waiter in waiters { consider(waiter.deadline) }
        if let limit = configuration.createLimit, limit.interval > .zero, !waiters.isEmpty || warmUpNeeded {
            consider(lastRefill.advanced(by: limit.interval))
        }
        consider(nextDrain)
        for entry in overflow { consider(entry.expiresAt) }
        for (index, entry) in idle.enumerated() {
            consider(entry.expiresAt)
            if idle.count - index > configuration.minIdle {
                consider(configuration.maxIdleTime.map { entry.lastUsed.advanced(by: $0) })
            }
        }
        if pingInterval != nil, !idle.isEmpty { consider(nextPing) }
        if warmUpNeeded { consider(max(nextWarmUp, now)) }
        return next
    }
}

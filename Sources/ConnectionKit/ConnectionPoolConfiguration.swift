/// Settings of a ``ConnectionPool``: every option of radix's pool, plus a hard
/// cap, warm-up, lifetimes and idle times as database/sql and pgxpool have them.
@usableFromInline
package struct ConnectionPoolConfiguration: Sendable, Hashable {
    /// The name in errors, logs and metrics.
    @usableFromInline package var name: String
    /// How many idle connections the pool keeps (radix's `size`). More are
    /// created on demand; returned ones beyond this go to the overflow buffer or are closed.
    @usableFromInline package var idleSize: Int
    /// A hard cap on open connections (idle, in use, being opened); borrowers
    /// beyond it wait in FIFO order. `nil`: no cap (radix's behaviour).
    @usableFromInline package var maxOpen: Int?
    /// Idle connections to keep warm; ``ConnectionPool/run()`` opens them at most
    /// one per ``warmUpInterval``.
    @usableFromInline package var minIdle: Int
    /// The pace of warm-up dials.
    @usableFromInline package var warmUpInterval: Duration
    /// A token bucket for creating connections (radix's `CreateLimit`).
    @usableFromInline package var createLimit: CreateLimit?
    /// How long a borrower waits for a connection (radix's `GetTimeout`); the
    /// wait only, not the dial. `nil`: as long as it takes.
    @usableFromInline package var getTimeout: Duration?
    /// Room for returned connections beyond ``idleSize`` (radix's `OnFullBuffer`).
    @usableFromInline package var overflow: OverflowBuffer?
    /// How often one idle connection is pinged, rotating through them (radix's `PingInterval`).
    @usableFromInline package var pingInterval: PingInterval
    /// Connections older than this (±``lifetimeJitter``) are closed instead of reused.
    @usableFromInline package var maxLifetime: Duration?
    /// The random spread of ``maxLifetime``, 0 to 1, so connections do not all expire together.
    @usableFromInline package var lifetimeJitter: Double
    /// Idle connections unused this long are closed (``minIdle`` of them are kept).
    @usableFromInline package var maxIdleTime: Duration?

    /// A pool named `name` keeping `idleSize` idle connections, with every other option off.
    @usableFromInline package init(name: String = "pool", idleSize: Int = 10) {
        self.name = name
        self.idleSize = max(0, idleSize)
        self.maxOpen = nil
        self.minIdle = 0
        self.warmUpInterval = .milliseconds(10)
        self.createLimit = nil
        self.getTimeout = nil
        self.overflow = nil
        self.pingInterval = .automatic
        self.maxLifetime = nil
        self.lifetimeJitter = 0.1
        self.maxIdleTime = nil
    }
}

/// At most `headroom` connections created at once, then one more per `interval`.
public struct CreateLimit: Sendable, Hashable {
    /// The bucket's size, full at start.
    public var headroom: Int
    /// One token comes back per interval; zero disables the limit.
    public var interval: Duration

    /// Creates a limit.
    public init(headroom: Int, interval: Duration) {
        self.headroom = max(1, headroom)
        self.interval = interval
    }
}

/// An overflow buffer for returned connections when the idle set is full.
public struct OverflowBuffer: Sendable, Hashable {
    /// How many connections it holds.
    public var size: Int
    /// One connection is closed from it per interval.
    public var drainInterval: Duration

    /// Creates a buffer.
    public init(size: Int, drainInterval: Duration) {
        self.size = max(0, size)
        self.drainInterval = drainInterval
    }
}

/// How idle connections are pinged.
public enum PingInterval: Sendable, Hashable {
    /// Every 10 s divided by the number of idle connections the pool keeps.
    case automatic
    /// Never.
    case disabled
    /// One idle connection per this interval.
    case every(Duration)

    func resolved(idleSize: Int) -> Duration? {
        switch self {
        case .automatic: idleSize > 0 ? .seconds(10) / idleSize : nil
        case .disabled: nil
        case .every(let interval): interval > .zero ? interval : nil
        }
    }
}

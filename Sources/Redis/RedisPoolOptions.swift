import ConnectionKit

/// The options of a ``RedisPool``.
public struct RedisPoolOptions: Sendable {
    /// Opens one connection for the pool: the place for
    /// AUTH, SELECT or anything else a new connection needs. `nil`: ``RedisConnection/connect(_:on:logger:)``
    /// with the pool's configuration (which already sends AUTH, SELECT and SETNAME).
    /// The session the hook leaves is what "clean" means for the pool's connections; one
    /// a borrower changes is closed rather than reset (only the hook knows how to redo it).
    public var dial: (@Sendable (RedisConfiguration) async throws -> RedisConnection)?
    /// Creating connections on demand: at most `headroom` at once, then one per `interval`.
    /// `nil`: no limit.
    public var createLimit: CreateLimit?
    /// How long a borrower of ``RedisPool`` waits for a connection when none may be created,
    /// then fails with ``RedisError/Code/poolTimeout``. `nil`: no limit. Default 30 s.
    public var getTimeout: Duration?
    /// Room for connections returned while the pool already holds `size` idle ones;
    /// one of them is closed per drain interval. `nil`: such connections are closed at once.
    public var onFullBuffer: OverflowBuffer?
    /// One idle connection is PINGed per interval, so a dead one is found before a caller
    /// borrows it (the default: every 10 s divided by the size).
    public var pingInterval: PingInterval
    /// A hard cap on open connections; borrowers beyond it wait. `nil`: none.
    public var maxOpen: Int?
    /// Commands sent through ``RedisPool/send(_:)`` share a few connections,
    /// and commands from many tasks go out together in one write. `nil`: each command borrows a connection.
    public var autoPipelining: AutoPipelining?
    /// The pool's name in errors, logs and metrics.
    public var name: String

    /// Every option off but the automatic ping interval.
    public init(name: String = "redis") {
        self.name = name
        dial = nil
        createLimit = nil
        getTimeout = .seconds(30)
        onFullBuffer = nil
        pingInterval = .automatic
        maxOpen = nil
        autoPipelining = nil
    }
}

/// Automatic pipelining: commands from many tasks coalesced onto a few shared connections.
public struct AutoPipelining: Sendable, Hashable {
    /// How many connections the commands are spread over, round-robin. Default 2.
    public var connections: Int

    /// Creates the option.
    public init(connections: Int = 2) {
        self.connections = max(1, connections)
    }
}

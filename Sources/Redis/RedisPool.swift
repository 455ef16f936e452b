import ConnectionKit
import Logging
import NIOClientSupport
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle

/// A pool of ``RedisConnection``s to one server: a size, a dial hook, a create
/// limit, a wait bound and an overflow buffer (``RedisPoolOptions``), the idle
/// count (``available``), one command on a borrowed connection (``send(_:)``),
/// a connection borrowed for a body (``withConnection(_:)``) and ``empty()``.
///
/// A connection that saw a connection-class error (timeout, reset, garbage) is
/// never put back, whoever returns it. Run ``run()`` (a `Service`) for the
/// timers: get timeouts, create-limit refills, overflow draining, pings.
public final class RedisPool: Service, RedisCommandRunner {
    /// A borrowed connection; give it back with ``put(_:)``.
    package typealias Lease = ConnectionPool<RedisConnection, ContinuousClock, RedisError>.Lease

    /// The server and how to set up connections.
    public let configuration: RedisConfiguration
    /// The options.
    public let options: RedisPoolOptions
    /// Runs tasks on the event loop all of the pool's connections use: a task
    /// that prefers it (`withTaskExecutorPreference(pool.taskExecutor)`, or
    /// `group.addTask(executorPreference:)`) sends and receives without a thread hop.
    public let taskExecutor: EventLoopTaskExecutor
    let pool: ConnectionPool<RedisConnection, ContinuousClock, RedisError>
    private let shared: SharedConnections<RedisConnection, ContinuousClock.Instant, RedisError>?
    private let openConnections = OpenConnections()
    private let logger: Logger

    /// A pool of `size` idle connections to the server of `configuration`
    /// (more are created on demand).
    public init(
        configuration: RedisConfiguration,
        size: Int,
        options: RedisPoolOptions = RedisPoolOptions(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.redis")
    ) {
        self.configuration = configuration
        self.options = options
        self.logger = logger
        var settings = ConnectionPoolConfiguration(name: options.name, idleSize: size)
        settings.createLimit = options.createLimit
        settings.getTimeout = options.getTimeout
        settings.overflow = options.onFullBuffer
        settings.pingInterval = options.pingInterval
        settings.maxOpen = options.maxOpen
        let dial = options.dial
        // All of a pool's connections share one event loop: a task resumed by a
        // reply on that loop (with NIO as the global executor) sends its next
        // command from there without a thread hop.
        let loop = eventLoopGroup.next()
        taskExecutor = EventLoopTaskExecutor(eventLoop: loop)
        let openConnections = self.openConnections
        let lifecycle = ConnectionLifecycle<RedisConnection, RedisError>(
            dial: { () async throws(RedisError) -> RedisConnection in
                do {
                    let connection: RedisConnection
                    if let dial {
                        connection = try await dial(configuration)
                        connection.markSessionNew()  // what the hook set up (SELECT, CLIENT SETNAME...) is the baseline
                    } else {
                        connection = try await RedisConnection.connect(configuration, on: loop, logger: logger)
                    }
                    guard openConnections.opened(connection) else {
                        // closeAllConnections() ran while this one was being opened: it must not be used.
                        await connection.close()
                        throw RedisError(
                            .connectFailed, message: "the pool closed all its connections while this one was opened",
                            endpoint: configuration.endpoint)
                    }
                    return connection
                } catch let error as RedisError {
                    throw error
                } catch {
                    throw RedisError(.connectFailed, message: "the dial hook failed: \(error)", endpoint: configuration.endpoint)
                }
            },
            close: { connection in
                openConnections.closed(connection)
                await connection.close()
            },
            ping: { try await $0.ping() })
        pool = ConnectionPool(configuration: settings, lifecycle: lifecycle, observer: observer, logger: logger)
        shared = options.autoPipelining.map { option in
            SharedConnections(count: option.connections) {
                RedisError(.poolUnavailable, message: "the pool is closed", endpoint: configuration.endpoint)
            }
        }
    }

    /// A pool of `size` idle connections to `address` (`host:port` or a `redis://` URL).
    public convenience init(address: String, size: Int, options: RedisPoolOptions = RedisPoolOptions()) throws(RedisError) {
        self.init(configuration: try RedisConfiguration(url: address), size: size, options: options)
    }

    // MARK: borrowing

    /// Borrows a connection: an idle one, a new one, or one freed while waiting
    /// (at most ``RedisPoolOptions/getTimeout``). Connections found broken are dropped, never handed out.
    package func get() async throws(RedisError) -> Lease {
        while true {
            let lease: Lease
            do throws(ManagedFailure<RedisError>) {
                lease = try await pool.borrow()
            } catch {
                throw Self.redisError(error, endpoint: configuration.endpoint)
            }
            if !lease.connection.isBroken { return lease }
            await pool.release(lease, broken: true)
        }
    }

    /// Returns a borrowed connection, only as clean as a new one: one that saw a
    /// connection-class error is closed; one whose session its borrower changed (`MULTI`
    /// or `WATCH` left open, `SELECT`, `CLIENT REPLY`...) is reset first
    /// (``RedisConnection/resetSession()``, counted in `PoolStatistics.resets` and logged
    /// at warning level), or closed when it cannot be (a subscription).
    package func put(_ lease: Lease) async {
        let connection = lease.connection
        guard !connection.isBroken else { return await pool.release(lease, closing: .broken) }
        guard connection.sessionIsClean else { return await putDirty(lease) }
        await pool.release(lease)
    }

    private func putDirty(_ lease: Lease) async {
        // RESET would undo what a dial hook set up, which only the hook knows how to redo: closed.
        let reset = options.dial == nil ? await lease.connection.resetSession() : false
        logger.warning(
            "a connection came back with its session changed; \(reset ? "reset" : "closed")",
            metadata: ["pool": "\(options.name)", "endpoint": "\(configuration.endpoint)"])
        if reset {
            pool.recordReset()
            await pool.release(lease)
        } else {
            await pool.release(lease, closing: .dirty)
        }
    }

    /// Borrows a connection for `body` and puts it back (or closes it, if it broke).
    public func withConnection<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        let lease = try await get()
        do {
            let result = try await body(lease.connection)
            await put(lease)
            return result
        } catch {
            await put(lease)
            throw error
        }
    }

    /// Sends one command: on a borrowed connection, or, with
    /// ``RedisPoolOptions/autoPipelining``, on a shared one together with other tasks' commands.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        // The endpoint is formatted only for an error, never per command.
        try Self.refuseSessionCommand(command, endpoint: configuration.endpoint)
        if let shared { return try await sendShared(command, shared) }
        let lease = try await get()
        let result = await lease.connection.sendOne(command)
        await put(lease)
        return try result.get()
    }

    /// One command on the next shared connection (automatic pipelining); a connection
    /// that broke under it is given back, and its slot dials again on next use.
    @inline(__always)  // one async frame less per command on the hot path
    private func sendShared(
        _ command: RedisCommand, _ shared: SharedConnections<RedisConnection, ContinuousClock.Instant, RedisError>
    ) async throws(RedisError) -> RESPValue {
        let (lease, slot) = try await shared.lease(
            acquire: { () async throws(RedisError) -> Lease in
                let lease = try await get()
                await lease.connection.coalesceFlushes()
                return lease
            }, release: put)
        let result = await lease.connection.sendOne(command)
        if case .failure(let error) = result, error.isConnectionError { await shared.discard(lease, slot: slot, release: put) }
        return try result.get()
    }

    // MARK: management

    /// Idle connections ready to borrow.
    public var available: Int { pool.available }

    /// Figures and totals: open, in use, idle, waits, timeouts, opened, closed by reason.
    public var statistics: PoolStatistics { pool.statistics }

    /// Closes every idle connection and lets go of the shared ones of automatic
    /// pipelining; the pool stays usable. Safe to call repeatedly.
    public func empty() async {
        await shared?.releaseAll(release: put)
        await pool.empty()
    }

    /// Shuts the pool down: waiters fail, idle connections close now, borrowed ones when put back. Safe to call repeatedly.
    public func close() async {
        await shared?.releaseAll(closing: true, release: put)
        await pool.close()
    }

    /// Shuts the pool down and closes every connection at once, borrowed ones
    /// too (their pending commands fail with ``RedisError/Code/connectionClosed``):
    /// for a server that must not see another command. Returns how many connections it let go.
    @discardableResult
    func closeAllConnections() async -> Int {
        await close()
        return await openConnections.closeAll()
    }

    /// Drives the pool's timers until ``close()``, graceful shutdown or cancellation.
    public func run() async throws {
        try await pool.run()
    }

    /// Throws ``RedisError/Code/misuse`` for a command that changes its connection's session
    /// (`MULTI`, `WATCH`, `SELECT`, `SUBSCRIBE`...) sent where each command may run on another
    /// connection: it could not work, and on a shared connection it would capture other tasks'
    /// commands. Such commands belong in ``withConnection(_:)`` or a lease. Nothing is sent.
    static func refuseSessionCommand(_ command: RedisCommand, endpoint: @autoclosure () -> String) throws(RedisError) {
        guard RedisSessionEffect.of(command) != .none else { return }
        throw RedisError(
            .misuse, message: "\(command.name) changes the session of the connection it runs on; send it on one borrowed connection",
            endpoint: endpoint(), command: command.name)
    }

    static func redisError(_ error: ManagedFailure<RedisError>, endpoint: String) -> RedisError {
        switch error {
        case .failed(let error):
            return error
        case .refused(let error) where error.code == .poolTimeout:
            return RedisError(.poolTimeout, message: error.message, endpoint: endpoint)
        case .refused(let error):
            return RedisError(.poolUnavailable, message: "\(error.code): \(error.message)", endpoint: endpoint)
        }
    }
}

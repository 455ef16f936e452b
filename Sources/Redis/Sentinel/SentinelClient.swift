import ConnectionKit
import Logging
import Metrics
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle

/// A client of Redis masters and replicas found through Redis Sentinel, that
/// follows failovers: many master names, a pool per master, connections
/// borrowed for a body (``withMaster(_:_:)``) or commands sent to whatever
/// master is current (``master(_:)``).
///
/// - **Discovery**: every sentinel is asked at once (`SENTINEL MASTER`, a short
///   timeout each); the first address that answers `ROLE` as master wins.
///   One sentinel down (the first one included) changes nothing.
/// - **Following**: `+switch-master` and the other events are heard on several
///   sentinels, and every master is checked again each ``SentinelConfiguration/recheckInterval``
///   (the address named with the newest config epoch, and the master's own `ROLE`),
///   so a missed message, a dead subscription or a stale sentinel cannot leave
///   the client on an old master.
/// - **No write on a demoted master**: on a switch, new leases go to the new master
///   at once and every connection to the old one is closed, borrowed ones too
///   (their pending commands fail; a lease returned later is closed, never pooled).
///   A `READONLY` reply closes the master's connections and triggers a check;
///   the command, which did not run, is sent again to the new master, as is a
///   command that could not reach a master that is down.
///
/// Run ``run()`` (a `Service`): it does the discovery, the checks, the
/// subscriptions and the pools' timers. Leases asked for before a master is
/// verified wait at most ``SentinelConfiguration/masterWait``.
///
/// ```swift
/// let client = try SentinelClient(configuration: SentinelConfiguration(
///     sentinels: ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"], masterNames: ["mymaster"]))
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { try await client.run() }
///     let master = client.master("mymaster")
///     try await master.set("greeting", to: "hello")
///     try await client.withMaster("mymaster") { lease in _ = try await lease.send("INCR", "visits") }
///     await client.close()
/// }
/// ```
public final class SentinelClient: Service, Sendable {
    /// The configuration.
    public let configuration: SentinelConfiguration
    let masters: [String: FollowedMaster]
    let directory: SentinelDirectory
    let group: any EventLoopGroup
    let observer: any ConnectionObserver
    let logger: Logger
    /// Pools made while running, handed to ``run()`` to drive their timers.
    let newPools: (stream: AsyncStream<RedisPool>, continuation: AsyncStream<RedisPool>.Continuation)
    let closed = Locked(false)

    /// Creates a client; nothing is contacted until ``run()``.
    ///
    /// - Throws: ``RedisError/Code/invalidConfiguration`` when no sentinel or no
    ///   master name is given, or a sentinel address is malformed.
    public init(
        configuration: SentinelConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        observer: any ConnectionObserver = SilentObserver(),
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger = Logger(label: "clustersql.sentinel")
    ) throws(RedisError) {
        guard !configuration.sentinels.isEmpty else { throw .invalidConfiguration("no sentinel address is given") }
        guard !configuration.masterNames.isEmpty else { throw .invalidConfiguration("no master name is given") }
        guard !configuration.masterNames.contains(where: \.isEmpty) else { throw .invalidConfiguration("a master name is empty") }
        var addresses: [SentinelAddress] = []
        for text in configuration.sentinels {
            let address = try SentinelAddress(parsing: text)
            if !addresses.contains(address) { addresses.append(address) }
        }
        self.configuration = configuration
        let metrics = metricsFactory ?? NOOPMetricsHandler.instance
        masters = Dictionary(
            configuration.masterNames.map { ($0, FollowedMaster(name: $0, balancing: configuration.replicaBalancing, metrics: metrics)) }
        ) { first, _ in first }
        group = eventLoopGroup
        self.observer = observer
        self.logger = logger
        directory = SentinelDirectory(configuration: configuration, known: addresses, group: eventLoopGroup, logger: logger)
        newPools = AsyncStream.makeStream(of: RedisPool.self)
    }

    // MARK: the master

    /// A runner of commands on `name`'s master (the typed helpers of
    /// ``RedisCommandRunner``), its writes as durable as ``SentinelConfiguration/durableWrites`` says.
    public func master(_ name: String) -> SentinelMaster {
        SentinelMaster(client: self, name: name, durability: configuration.durableWrites)
    }

    /// A runner of commands on `name`'s master whose writes wait for `durable`'s
    /// acknowledgements, whatever ``SentinelConfiguration/durableWrites`` says;
    /// `nil`: its writes wait for no replica.
    public func master(_ name: String, durable: DurableWrites?) -> SentinelMaster {
        SentinelMaster(client: self, name: name, durability: durable)
    }

    /// Borrows a connection to `name`'s master: waits at most
    /// ``SentinelConfiguration/masterWait`` while no master is verified.
    /// Give it back with ``putMaster(_:)``.
    package func getMaster(_ name: String) async throws(RedisError) -> SentinelLease {
        let master = try followed(name)
        var attempts = 0
        while true {
            attempts += 1
            let serving = try await master.master(wait: configuration.masterWait)
            let lease: RedisPool.Lease
            do throws(RedisError) {
                lease = try await serving.pool.get()
            } catch {
                guard await failed(error, on: serving, of: master), attempts < 3 else { throw error }
                continue
            }
            // A switch between the two steps retired that pool: its connection is already closed.
            if master.serving?.generation == serving.generation {
                return SentinelLease(client: self, master: master, serving: serving, lease: lease)
            }
            await serving.pool.put(lease)
        }
    }

    /// Gives back a lease. A lease to a master the client has left since is
    /// closed, never put into the new master's pool.
    package func putMaster(_ lease: SentinelLease) async {
        await lease.pool.put(lease.lease)
    }

    /// Borrows a connection to `name`'s master for `body` (waiting at most
    /// ``SentinelConfiguration/masterWait`` while no master is verified) and gives it
    /// back: a connection to a master the client has left since is closed, never put
    /// into the new master's pool.
    public func withMaster<T>(_ name: String, _ body: (SentinelLease) async throws -> T) async throws -> T {
        let lease = try await getMaster(name)
        do {
            let result = try await body(lease)
            await putMaster(lease)
            return result
        } catch {
            await putMaster(lease)
            throw error
        }
    }

    /// Sends one command to `name`'s master.
    @discardableResult
    package func send(_ command: RedisCommand, toMaster name: String) async throws(RedisError) -> RESPValue {
        try await sendToMaster(try followed(name), command, durability: configuration.durableWrites)
    }

    func sendToMaster(_ master: FollowedMaster, _ command: RedisCommand, durability: DurableWrites?) async throws(RedisError) -> RESPValue {
        var attempts = 0
        while true {
            attempts += 1
            let serving = try await master.master(wait: configuration.masterWait)
            let result: Result<RESPValue, RedisError>
            if let durability {
                result = await durableSend(command, durability, on: serving.pool)
            } else {
                do throws(RedisError) {
                    result = .success(try await serving.pool.send(command))
                } catch {
                    result = .failure(error)
                }
            }
            guard case .failure(let error) = result else { return try result.get() }
            // Sent again only when it provably did not run: refused with READONLY, or never sent (connecting failed).
            guard await failed(error, on: serving, of: master), attempts < 3 else { throw error }
        }
    }

    /// What a failed command says about the master, and whether the command may be
    /// sent again (it provably did not run):
    /// - `READONLY`: the master was demoted; its connections go, leases wait for
    ///   the next master, and the command is sent there (``SentinelConfiguration/retryReadOnly``).
    /// - connecting failed (the command was never sent): the master is unreachable;
    ///   leases wait for the next master verified, and the command is sent there
    ///   (``SentinelConfiguration/waitForFailover``). Its connections stay, in case the same master answers again.
    /// - the pool of a master left meanwhile was closed, or closed a connection
    ///   being opened: sent again to the current master.
    /// Any other connection-class error asks for a check now.
    @discardableResult
    func failed(_ error: RedisError, on serving: FollowedMaster.Serving, of master: FollowedMaster) async -> Bool {
        let readOnly = error.prefix == "READONLY"
        let connectFailed = error.code == .connectFailed || error.code == .connectTimeout
        // Another command already reported this master (`stale`), or a switch came first (`switched`).
        let current = master.serving?.generation
        let stale = current != serving.generation
        let switched = current != nil && stale
        // Never sent: connecting failed, or the pool was closed under it (its master was left).
        let unsent = connectFailed || (stale && error.code == .poolUnavailable)
        if readOnly {
            master.counters.readOnlySeen()
            let actions = await master.apply { $0.demoted(generation: serving.generation) }
            if !actions.retire.isEmpty {
                logger.warning("master answered READONLY", metadata: ["master": "\(master.name)", "address": "\(serving.address)"])
            }
        } else if connectFailed && !stale {
            _ = await master.apply { $0.unreachable(generation: serving.generation) }
            if master.needsResolution {
                logger.warning(
                    "master unreachable", metadata: ["master": "\(master.name)", "address": "\(serving.address)", "error": "\(error.code)"])
            }
        }
        if error.isConnectionError || readOnly { master.wakeup.wake() }
        if Task.isCancelled || isClosed { return false }
        if readOnly { return configuration.retryReadOnly }
        if switched { return unsent }  // at once, to the master that is served now
        return unsent && configuration.waitForFailover
    }

    private func durableSend(
        _ command: RedisCommand, _ durability: DurableWrites, on pool: RedisPool
    ) async -> Result<RESPValue, RedisError> {
        let lease: RedisPool.Lease
        do throws(RedisError) {
            lease = try await pool.get()
        } catch {
            return .failure(error)
        }
        let milliseconds = Int(durability.timeout.wholeMilliseconds)
        let replies = await lease.connection.pipeline([command, RedisCommand("WAIT", durability.replicas, max(1, milliseconds))])
        await pool.put(lease)
        guard case .success = replies[0] else { return replies[0] }
        switch replies[1] {
        case .success(.integer(let acknowledged)) where acknowledged >= durability.replicas:
            return replies[0]
        case .success(let reply):
            return .failure(
                RedisError(
                    .notDurable,
                    message:
                        "\(reply.string ?? String(describing: reply)) of \(durability.replicas) replicas acknowledged within \(durability.timeout)",
                    endpoint: lease.connection.configuration.endpoint, command: command.name))
        case .failure(let error):
            return .failure(error)
        }
    }

    // MARK: replicas

    /// A runner of read commands on `name`'s replicas, chosen per
    /// ``SentinelConfiguration/replicaBalancing`` among those that pass the checks; with none, the master (or ``RedisError/Code/noReplicaAvailable``,
    /// per ``SentinelConfiguration/replicaFallback``). Replicas are looked for from the first use on.
    public func replicas(_ name: String) -> SentinelReplicas {
        SentinelReplicas(client: self, name: name)
    }

    func sendToReplica(_ master: FollowedMaster, _ command: RedisCommand) async throws(RedisError) -> RESPValue {
        if !master.replicas.wanted { master.wakeup.wake() }  // the first replica read: look for them now
        guard let replica = master.replicas.next() else {
            guard configuration.replicaFallback == .master else {
                var error = RedisError(.noReplicaAvailable, message: "no replica of \(master.name) passes the checks")
                error.fromSentinel = true
                throw error
            }
            return try await sendToMaster(master, command, durability: nil)
        }
        let started = ContinuousClock.now
        do throws(RedisError) {
            let reply = try await replica.pool.send(command)
            master.replicas.finished(replica.address, after: started.duration(to: .now), ok: true)
            return reply
        } catch {
            master.replicas.finished(replica.address, after: started.duration(to: .now), ok: !error.isConnectionError)
            if error.isConnectionError, let pool = master.replicas.drop(replica.address) {
                logger.info("replica dropped after a failed read", metadata: ["replica": "\(replica.address)", "error": "\(error.code)"])
                await pool.close()
                master.wakeup.wake()
            }
            throw error
        }
    }

    // MARK: management

    /// `name`'s master served now, `host:port`; `nil` while none is verified.
    public func currentMaster(_ name: String) -> SentinelAddress? {
        masters[name]?.serving?.address
    }

    /// What the client knows of each master name, in the order of the names.
    public func statistics() -> [SentinelMasterStatistics] {
        configuration.masterNames.compactMap { masters[$0]?.statistics() }
    }

    /// The sentinels known now: the configured ones, then those learnt from the sentinels.
    public var sentinels: [SentinelAddress] { directory.known }

    /// Closes everything: waiters fail with ``RedisError/Code/clientClosed``, every
    /// connection (borrowed ones too) closes, ``run()`` returns. Safe to call repeatedly.
    public func close() async {
        let first = closed.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        newPools.continuation.finish()
        for master in masters.values {
            _ = await master.apply { $0.close() }
            for pool in master.replicas.removeAll() { await pool.closeAllConnections() }
            master.wakeup.wake()
        }
        await directory.close()
    }

    var isClosed: Bool { closed.withLock { $0 } }

    func followed(_ name: String) throws(RedisError) -> FollowedMaster {
        guard let master = masters[name] else { throw notFollowed(name) }
        return master
    }

    func notFollowed(_ name: String) -> RedisError {
        .invalidConfiguration("\(name) is not one of the client's master names (\(configuration.masterNames.joined(separator: ", ")))")
    }

    /// A pool for the data node at `address`, driven by ``run()``.
    func makePool(for address: SentinelAddress, of master: String) -> RedisPool {
        var options = configuration.poolOptions
        options.name = "\(options.name) \(master) \(address)"
        let pool = RedisPool(
            configuration: configuration.dataNode(address), size: configuration.poolSize, options: options, eventLoopGroup: group,
            observer: observer, logger: logger)
        newPools.continuation.yield(pool)
        return pool
    }
}

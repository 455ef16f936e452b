import ConnectionKit
import Logging
import Metrics
import NIOClientSupport
import NIOCore
import NIOPosix
import ServiceLifecycle

/// How a ``HealingMemcachedClient`` decides that a server is down and takes it back.
public struct HealingConfiguration: Sendable {
    /// Connection-class failures (timeouts, refused, reset, garbage) within ``failureWindow``
    /// that take a server down; a success clears the count. Default 10.
    public var failureThreshold: Int
    /// The window the failures are counted in. Default 10 s.
    public var failureWindow: Duration
    /// The healer's jittered delays between probes of a down server (`version` on a new connection).
    public var probeBackoff: BackoffPolicy
    /// While a server is down, its keys go to the next server on the ring (libmemcached's
    /// "remove failed servers"), and back when it heals. Off: they are misses. Default off.
    /// What was written to the next server meanwhile stays there: should the server go down
    /// again, those values would be served as current, so keep their TTLs short.
    public var redistributeWhileDown: Bool
    /// Whether a server that comes back is emptied (`flush_all`, on the healer's probe
    /// connection, before it serves again). While this client could not reach it, its keys'
    /// writes and deletes failed as ``MemcachedError/Code/unavailable`` (or, redistributed,
    /// went to another server), so it may still hold values changed or deleted meanwhile:
    /// without the flush it would serve them as current. The price is a cold server, which
    /// after a restart it is anyway; other clients of the server lose its items too. Turn it
    /// off only when stale values are harmless (short TTLs, values never changed in place).
    /// Default on.
    public var flushOnHeal: Bool

    /// The defaults above; probes after 100 ms, doubling to 5 s, ±20%.
    public init() {
        failureThreshold = 10
        failureWindow = .seconds(10)
        probeBackoff = BackoffPolicy(initial: .milliseconds(100), maximum: .seconds(5), jitter: 0.2)
        redistributeWhileDown = false
        flushOnHeal = true
    }
}

/// A memcached client that fails fast while a server is down and takes it back when it heals.
///
/// Each server has a circuit breaker (ConnectionKit's `CircuitBreaker`): after
/// ``HealingConfiguration/failureThreshold`` connection-class failures it is down,
/// and its calls return at once, without I/O: reads as misses (the app treats
/// an outage like a miss), writes as ``MemcachedError/Code/unavailable`` (which
/// the caller may ignore). The other servers keep serving their keys. A miss, a
/// malformed key, a too-large item or a refused store never counts as a failure.
/// One healer per down server (in ``run()``) probes it with `version` after
/// jittered backoff and takes it back only when it answers, emptied first
/// (``HealingConfiguration/flushOnHeal``: it may hold values changed or deleted
/// while it was out), closing its old connections.
///
/// Every operation of ``MemcachedCommandRunner`` works on it.
public final class HealingMemcachedClient: MemcachedCommandRunner, Service {
    /// The client it guards.
    package let client: MemcachedClient
    /// The healing settings.
    public let healing: HealingConfiguration
    /// The guarded client's event-loop executor (``MemcachedClient/taskExecutor``):
    /// tasks that prefer it send and receive without a thread hop.
    public var taskExecutor: EventLoopTaskExecutor { client.taskExecutor }
    private let breakers: [CircuitBreaker<ContinuousClock>]
    private let down: Locked<DownServers>
    private let shortCircuited: [Counter]
    private let logger: Logger
    /// Finished by ``close()`` (or graceful shutdown): ``run()`` then stops the healers and returns.
    private let stopSignal = AsyncStream<Void>.makeStream()

    /// A client of `configuration`'s servers that heals as configured.
    public init(
        configuration: MemcachedClientConfiguration,
        healing: HealingConfiguration = HealingConfiguration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger = Logger(label: "clustersql.memcached")
    ) {
        let factory = metricsFactory ?? NOOPMetricsHandler.instance
        client = MemcachedClient(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        self.healing = healing
        self.logger = logger
        let down = Locked(DownServers())
        self.down = down
        var breakerSettings = CircuitBreakerConfiguration()
        breakerSettings.failureThreshold = Double(max(1, healing.failureThreshold))
        breakerSettings.slidingWindow = healing.failureWindow
        breakerSettings.probeBackoff = healing.probeBackoff
        breakerSettings.resetsOnSuccess = true
        let client = self.client
        let servers = configuration.servers
        shortCircuited = servers.map {
            Counter(label: "clustersql_memcached_short_circuited_total", dimensions: [("server", $0.description)], factory: factory)
        }
        breakers = servers.enumerated().map { index, server in
            let attempts = Counter(
                label: "clustersql_memcached_heal_attempts_total", dimensions: [("server", server.description)], factory: factory)
            let observer = DownTracker(
                index: index, servers: servers, redistribute: healing.redistributeWhileDown, down: down,
                forward: MetricsObserver(source: "memcached \(server)", factory: factory), logger: logger)
            return CircuitBreaker(
                name: "memcached \(server)", configuration: breakerSettings, clock: ContinuousClock(), observer: observer, logger: logger,
                isFailure: { ($0 as? MemcachedError)?.isConnectionError == true },
                probe: {
                    attempts.increment()
                    let connection = try await MemcachedConnection.connect(server, on: eventLoopGroup)
                    defer { Task { await connection.close() } }
                    _ = try await connection.version()
                    // What it holds may have been changed or deleted while it was out: never served.
                    if healing.flushOnHeal { try await connection.flushAll() }
                    await client.dropConnections(toServer: index)  // connections from before the outage go
                })
        }
    }

    /// Whether every server is up.
    public var connectionAvailable: Bool { down.withLock { $0.indices.isEmpty } }

    /// Whether server `index` (of the configuration's servers) is up.
    public func isAvailable(server index: Int) -> Bool { !down.withLock { $0.indices.contains(index) } }

    /// The item size limit writes are checked against.
    public var maxItemSize: Int { client.maxItemSize }

    /// Whether keys with spaces or control characters are allowed.
    public var binaryKeys: Bool { client.binaryKeys }

    /// Sends one request about `key` to its server through that server's breaker.
    /// While the server is down: at once, a miss for a read, ``MemcachedError/Code/unavailable`` otherwise (a touch included).
    public func send(_ command: MetaCommand, routedBy key: String) async throws(MemcachedError) -> MemcachedReply {
        guard let index = route(key) else { throw MemcachedError(.invalidConfiguration, message: "the client has no server") }
        do {
            return try await send(command, throughBreakerOf: index)
        } catch  where error.code == .unavailable && command.isRead {
            return .response(.status(.miss, MetaFlags()))
        }
    }

    /// Reads many keys at once, as ``MemcachedClient/getMany(_:)`` does: grouped by
    /// server, one pipelined round trip each, the servers asked in parallel, each
    /// through its breaker. A server that is down is not asked: its keys are missing
    /// from the items, and the server is in the failures as ``MemcachedError/Code/unavailable``.
    public func getMany(_ keys: [String]) async -> MemcachedMultiGet {
        await MemcachedMultiGet.gather(keys, servers: client.configuration.servers, route: route) { keys, index in
            await self.fetch(keys, throughBreakerOf: index)
        }
    }

    /// Reads `keys` from server `index` if its breaker lets it; ``MemcachedError/Code/unavailable`` at once while it is down.
    private func fetch(_ keys: [String], throughBreakerOf index: Int) async -> Result<MemcachedMultiGet.ServerItems, MemcachedError> {
        let client = self.client
        do throws(ManagedFailure<MemcachedError>) {
            return .success(
                try await breakers[index].call { () async throws(MemcachedError) in try await client.fetch(keys, fromServer: index).get() })
        } catch {
            switch error {
            case .failed(let error): return .failure(error)
            case .refused: return .failure(failingFast(index))
            }
        }
    }

    /// The index in the configuration's servers of the server `key` is sent to now: its own,
    /// or, with ``HealingConfiguration/redistributeWhileDown``, the next one up while its own
    /// is down. `nil` without servers.
    public func serverIndex(for key: String) -> Int? { route(key) }

    /// `flush_all` on every server, each through its breaker (a server that is down is not
    /// asked: ``MemcachedError/Code/unavailable``); the first error is thrown after all were asked.
    public func flushAll() async throws(MemcachedError) {
        var firstError: MemcachedError?
        for index in client.configuration.servers.indices {
            do throws(MemcachedError) {
                let reply = try await send(.flushAll(), throughBreakerOf: index)
                guard case .response(.ok) = reply.body else {
                    throw MemcachedError(
                        .protocolViolation, message: "flush_all was not answered OK",
                        server: client.configuration.servers[index].description)
                }
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    /// `version` on every server that is up; throws the first error.
    public func ping() async throws(MemcachedError) {
        for index in client.configuration.servers.indices where isAvailable(server: index) {
            let reply = try await send(.version, throughBreakerOf: index)
            guard case .response(.version) = reply.body else {
                throw MemcachedError(.protocolViolation, message: "version was not answered VERSION")
            }
        }
    }

    /// Sends `command` to server `index` if its breaker lets it; ``MemcachedError/Code/unavailable`` at once while it is down.
    private func send(_ command: MetaCommand, throughBreakerOf index: Int) async throws(MemcachedError) -> MemcachedReply {
        let client = self.client
        do throws(ManagedFailure<MemcachedError>) {
            return try await breakers[index].call { () async throws(MemcachedError) in try await client.send(command, toServer: index) }
        } catch {
            switch error {
            case .failed(let error): throw error
            case .refused: throw failingFast(index)
            }
        }
    }

    /// The error of a call that server `index`'s open breaker refused (counted as short-circuited).
    private func failingFast(_ index: Int) -> MemcachedError {
        shortCircuited[index].increment()
        return MemcachedError(
            .unavailable, message: "the server is down; failing fast", server: client.configuration.servers[index].description)
    }

    /// The server for `key`: its own, or with redistribution on, the next live one while it is down.
    private func route(_ key: String) -> Int? {
        guard let own = client.serverIndex(for: key) else { return nil }
        guard healing.redistributeWhileDown else { return own }
        return down.withLock { state in
            guard state.indices.contains(own), let ring = state.liveRing, let live = ring.server(for: Array(key.utf8)) else { return own }
            return state.liveIndices[live]
        }
    }

    /// Runs the healers (one per server, probing only while it is down) and the pools' timers,
    /// until ``close()``, graceful shutdown or cancellation.
    public func run() async throws {
        let stop = stopSignal
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await self.client.run() }
                for breaker in breakers { group.addTask { try await breaker.run() } }
                for await _ in stop.stream {}
                group.cancelAll()
            }
        } onGracefulShutdown: {
            stop.continuation.finish()
        }
        await client.close()
    }

    /// Closes every connection and ends ``run()``; later calls fail. Safe to call repeatedly.
    public func close() async {
        stopSignal.continuation.finish()
        await client.close()
    }
}

/// The servers that are down, and the ring over those that are up (when
/// ``HealingConfiguration/redistributeWhileDown`` is on).
private struct DownServers: Sendable {
    var indices: Set<Int> = []
    var liveRing: Ketama?
    var liveIndices: [Int] = []
}

/// Keeps the set of down servers (and the ring over the live ones) in step with
/// the breakers, logs the changes, and forwards them to the metrics observer.
private struct DownTracker: ConnectionObserver {
    let index: Int
    let servers: [MemcachedServerConfiguration]
    let redistribute: Bool
    let down: Locked<DownServers>
    let forward: MetricsObserver
    let logger: Logger

    func breakerChanged(from: CircuitState, to: CircuitState) {
        forward.breakerChanged(from: from, to: to)
        guard from == .closed || to == .closed else { return }
        let server = servers[index].description
        down.withLock { state in
            if to == .closed { state.indices.remove(index) } else { state.indices.insert(index) }
            if redistribute {
                state.liveIndices = servers.indices.filter { !state.indices.contains($0) }
                state.liveRing = Ketama(
                    servers: state.liveIndices.map {
                        Ketama.Server(host: servers[$0].host, port: servers[$0].port, weight: servers[$0].weight)
                    })
            }
        }
        if to == .closed {
            logger.info("memcached server up", metadata: ["server": "\(server)"])
        } else {
            logger.warning("memcached server down; its calls return at once", metadata: ["server": "\(server)"])
        }
    }
}

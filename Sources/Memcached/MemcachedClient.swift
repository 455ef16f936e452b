import ConnectionKit
import Logging
import NIOClientSupport
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The servers of a ``MemcachedClient`` and how it uses them.
public struct MemcachedClientConfiguration: Sendable {
    /// The servers, with their timeouts and ketama weights.
    public var servers: [MemcachedServerConfiguration]
    /// Idle connections kept per server; more are opened on demand, and those beyond it are
    /// closed when returned. Default 8: with fewer, eight concurrent callers open and close a
    /// connection on most calls (see the Benchmarks article).
    public var idleConnectionsPerServer: Int
    /// Keys with spaces or control characters are allowed, sent base64-encoded (meta protocol `b` flag). Default off.
    public var binaryKeys: Bool
    /// Connections per server that every task shares, single requests pipelined on them:
    /// requests that tasks send together leave in one write and their replies arrive in
    /// one read. `nil`: each request borrows a connection of its own from the pool. Pipelined
    /// batches (``MemcachedClient/getMany(_:)``) always borrow one. Default 1: one shared
    /// connection a server costs less client CPU per call than a connection borrowed per
    /// call, or than two shared ones (see the Benchmarks article).
    public var sharedConnectionsPerServer: Int?

    /// A configuration for `servers`.
    public init(servers: [MemcachedServerConfiguration]) {
        self.servers = servers
        idleConnectionsPerServer = 8
        binaryKeys = false
        sharedConnectionsPerServer = 1
    }

    /// A configuration for `host[:port]` addresses.
    public init(addresses: [String]) throws(MemcachedError) {
        var servers: [MemcachedServerConfiguration] = []
        for address in addresses { servers.append(try MemcachedServerConfiguration(address: address)) }
        self.init(servers: servers)
    }
}

/// What ``MemcachedClient/getMany(_:)`` found: the items, and per server what failed.
public struct MemcachedMultiGet: Sendable {
    /// The items found, by key; a key that missed or whose server failed is absent.
    public var items: [String: MemcachedItem]
    /// Per server (`host:port`), the error that kept its keys from being read.
    public var failures: [String: MemcachedError]
    /// Keys refused before any I/O (malformed), with the error.
    public var refused: [String: MemcachedError]

    /// Whether every key was asked and answered (found or missed): no server failed and no key was refused.
    public var isComplete: Bool { failures.isEmpty && refused.isEmpty }

    /// What one server gave for its keys: the items found, and the keys refused before any I/O.
    typealias ServerItems = (items: [String: MemcachedItem], refused: [String: MemcachedError])

    /// Reads `keys` grouped by the server `route` gives each (`nil`: refused, no server), one
    /// `fetch` per server, the servers asked in parallel; a failed server is named by `servers`.
    static func gather(
        _ keys: [String], servers: [MemcachedServerConfiguration], route: (String) -> Int?,
        fetch: @escaping @Sendable (_ keys: [String], _ server: Int) async -> Result<ServerItems, MemcachedError>
    ) async -> MemcachedMultiGet {
        var result = MemcachedMultiGet(items: [:], failures: [:], refused: [:])
        var groups: [Int: [String]] = [:]
        for key in Set(keys) {
            if let index = route(key) {
                groups[index, default: []].append(key)
            } else {
                result.refused[key] = MemcachedError(.invalidConfiguration, message: "the client has no server")
            }
        }
        await withTaskGroup(of: (Int, Result<ServerItems, MemcachedError>).self) { group in
            for (index, keys) in groups {
                group.addTask { (index, await fetch(keys, index)) }
            }
            for await (index, outcome) in group {
                switch outcome {
                case .success(let found):
                    result.items.merge(found.items) { first, _ in first }
                    result.refused.merge(found.refused) { first, _ in first }
                case .failure(let error):
                    result.failures[servers[index].description] = error
                }
            }
        }
        return result
    }
}

/// A client of many memcached servers: each key belongs to one server by
/// libmemcached-compatible weighted ketama, and each server has a
/// small pool of connections on ConnectionKit. The operations of
/// ``MemcachedCommandRunner`` go to the key's server; ``getMany(_:)`` asks the
/// servers in parallel, one pipelined round trip each.
///
/// A connection that saw a connection-class error is closed, never reused.
/// Run ``run()`` (a `Service`) for the pools' timers (idle pings).
public final class MemcachedClient: MemcachedCommandRunner, Service {
    /// The configuration.
    public let configuration: MemcachedClientConfiguration
    /// The ring over the servers, in configuration order.
    package let ring: Ketama
    /// Runs tasks on the one event loop all of the client's connections use: a task
    /// that prefers it (`withTaskExecutorPreference(client.taskExecutor)`, or
    /// `group.addTask(executorPreference:)`) sends and receives without a thread hop.
    /// Only for code that does not block.
    public let taskExecutor: EventLoopTaskExecutor
    let pools: [ConnectionPool<MemcachedConnection, ContinuousClock, MemcachedError>]
    /// Per server, its shared connections (``MemcachedClientConfiguration/sharedConnectionsPerServer``).
    private let shared: [SharedConnections<MemcachedConnection, ContinuousClock.Instant, MemcachedError>]

    /// Creates a client; connections are opened on first use, all on one event loop of `eventLoopGroup`.
    /// The group must outlive the client (the default, NIO's singleton, lives as long as the process).
    public init(
        configuration: MemcachedClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        observer: any ConnectionObserver = SilentObserver(),
        logger: Logger = Logger(label: "clustersql.memcached")
    ) {
        self.configuration = configuration
        ring = Ketama(servers: configuration.servers.map { Ketama.Server(host: $0.host, port: $0.port, weight: $0.weight) })
        // One loop for every server's connections: a task resumed by a reply sends its
        // next request, whatever its server, from that loop without a thread hop.
        let loop = eventLoopGroup.next()
        taskExecutor = EventLoopTaskExecutor(eventLoop: loop)
        pools = configuration.servers.map { server in
            var settings = ConnectionPoolConfiguration(name: "memcached \(server)", idleSize: configuration.idleConnectionsPerServer)
            settings.pingInterval = .every(.seconds(10))
            let lifecycle = ConnectionLifecycle<MemcachedConnection, MemcachedError>(
                dial: { () async throws(MemcachedError) in try await MemcachedConnection.connect(server, on: loop) },
                close: { await $0.close() },
                ping: { _ = try await $0.version() })
            return ConnectionPool(configuration: settings, lifecycle: lifecycle, observer: observer, logger: logger)
        }
        shared =
            configuration.sharedConnectionsPerServer.map { count in
                configuration.servers.map { server in
                    SharedConnections(count: count) {
                        MemcachedError(.clientClosed, message: "the client is closed", server: server.description)
                    }
                }
            } ?? []
    }

    /// The index in ``MemcachedClientConfiguration/servers`` of the server `key` belongs to; `nil` without servers.
    public func serverIndex(for key: String) -> Int? {
        if ring.servers.count == 1 { return 0 }
        var key = key
        return key.withUTF8 { ring.server(for: $0) }
    }

    /// Sends one request about `key` to the key's server, on a pooled connection.
    public func send(_ command: MetaCommand, routedBy key: String) async throws(MemcachedError) -> MemcachedReply {
        guard let index = serverIndex(for: key) else { throw MemcachedError(.invalidConfiguration, message: "the client has no server") }
        return try await send(command, toServer: index)
    }

    /// Sends one request to server `index`: on one of its shared connections, or on a pooled one.
    package func send(_ command: MetaCommand, toServer index: Int) async throws(MemcachedError) -> MemcachedReply {
        if !shared.isEmpty { return try await sendShared(command, toServer: index) }
        return try await withConnection(toServer: index) { connection throws(MemcachedError) in try await connection.send(command) }
    }

    private func sendShared(_ command: MetaCommand, toServer index: Int) async throws(MemcachedError) -> MemcachedReply {
        let pool = pools[index]
        let release = { (lease: ConnectionPool<MemcachedConnection, ContinuousClock, MemcachedError>.Lease) async in
            await pool.release(lease, broken: true)  // given back only when it broke, or when the client empties
        }
        let (lease, slot) = try await shared[index].lease(
            acquire: { () async throws(MemcachedError) -> ConnectionPool<MemcachedConnection, ContinuousClock, MemcachedError>.Lease in
                let lease = try await borrow(toServer: index)
                await lease.connection.coalesceFlushes()
                return lease
            }, release: release)
        do {
            return try await lease.connection.send(command)
        } catch {
            if error.isConnectionError || lease.connection.isBroken { await shared[index].discard(lease, slot: slot, release: release) }
            throw error.at(configuration.servers[index].description)
        }
    }

    /// Runs `body` on a connection to server `index`; a connection-class error closes the connection.
    func withConnection<T>(
        toServer index: Int, _ body: (MemcachedConnection) async throws(MemcachedError) -> T
    ) async throws(MemcachedError) -> T {
        let pool = pools[index]
        let lease = try await borrow(toServer: index)
        do {
            let result = try await body(lease.connection)
            await pool.release(lease, broken: lease.connection.isBroken)
            return result
        } catch {
            await pool.release(lease, broken: error.isConnectionError || lease.connection.isBroken)
            throw error.at(configuration.servers[index].description)
        }
    }

    /// Borrows a connection to server `index`, never one that broke while idle (it is
    /// closed and the next taken, as `RedisPool.get()` does); the pool's errors become
    /// typed ones naming the server.
    private func borrow(
        toServer index: Int
    ) async throws(MemcachedError) -> ConnectionPool<MemcachedConnection, ContinuousClock, MemcachedError>.Lease {
        // The server's name is made only for an error: it is not free, and calls that succeed never need it.
        var server: String { configuration.servers[index].description }
        do throws(ManagedFailure<MemcachedError>) {
            while true {
                let lease = try await pools[index].borrow()
                if !lease.connection.isBroken { return lease }
                await pools[index].release(lease, broken: true)
            }
        } catch {
            switch error {
            case .failed(let error):
                throw error.at(server)
            case .refused(let error) where error.code == .cancelled:
                throw MemcachedError(.cancelled, message: "the task was cancelled while it waited for a connection", server: server)
            case .refused(let error) where error.code == .shutdown:
                throw MemcachedError(.clientClosed, message: "the client is closed", server: server)
            case .refused(let error):
                throw MemcachedError(.unavailable, message: "\(error.code): \(error.message)", server: server)
            }
        }
    }

    /// The largest value a write may carry: the smallest of the servers' limits.
    public var maxItemSize: Int { configuration.servers.map(\.maxItemSize).min() ?? 0 }

    /// Whether keys with spaces or control characters are allowed.
    public var binaryKeys: Bool { configuration.binaryKeys }

    /// Reads many keys at once: grouped by server, each group one pipelined round
    /// trip, the servers asked in parallel. Returns what it got and, per server, what failed.
    public func getMany(_ keys: [String]) async -> MemcachedMultiGet {
        await MemcachedMultiGet.gather(keys, servers: configuration.servers, route: serverIndex(for:)) { keys, index in
            await self.fetch(keys, fromServer: index)
        }
    }

    /// Reads `keys` from server `index` in one pipelined round trip: the items found,
    /// and the keys refused before any I/O; a server or connection failure fails the whole.
    func fetch(_ keys: [String], fromServer index: Int) async -> Result<MemcachedMultiGet.ServerItems, MemcachedError> {
        var refused: [String: MemcachedError] = [:]
        var requests: [(key: String, command: MetaCommand)] = []
        for key in keys {
            do throws(MemcachedError) {
                requests.append((key, MetaCommand.get(try MemcachedKey.wire(key.utf8, binary: binaryKeys))))
            } catch {
                refused[key] = error
            }
        }
        guard !requests.isEmpty else { return .success(([:], refused)) }
        do throws(MemcachedError) {
            let items = try await withConnection(toServer: index) { connection throws(MemcachedError) in
                let replies = await connection.pipeline(requests.map(\.command))
                var items: [String: MemcachedItem] = [:]
                for (request, reply) in zip(requests, replies) {
                    switch try MetaResponse.single(try reply.get(), request.command) {
                    case .value(let value, let flags):
                        items[request.key] = MemcachedItem(value: value, flags: flags.clientFlags ?? 0, cas: flags.cas ?? 0)
                    case .status(.miss, _): break
                    case let other: throw MetaResponse.unexpected(other, request.command)
                    }
                }
                return items
            }
            return .success((items, refused))
        } catch {
            return .failure(error)
        }
    }

    /// `version` on every server: by `host:port`, the version or the error.
    public func versions() async -> [String: Result<String, MemcachedError>] {
        await withTaskGroup(of: (String, Result<String, MemcachedError>).self) { group in
            for index in configuration.servers.indices {
                group.addTask {
                    let server = self.configuration.servers[index].description
                    do throws(MemcachedError) {
                        return (
                            server,
                            .success(
                                try await self.withConnection(toServer: index) { connection throws(MemcachedError) in
                                    try await connection.version()
                                })
                        )
                    } catch {
                        return (server, .failure(error))
                    }
                }
            }
            var all: [String: Result<String, MemcachedError>] = [:]
            for await (server, result) in group { all[server] = result }
            return all
        }
    }

    /// `flush_all` on every server; the first error is thrown after all were asked.
    public func flushAll() async throws(MemcachedError) {
        var firstError: MemcachedError?
        for index in configuration.servers.indices {
            do throws(MemcachedError) {
                try await withConnection(toServer: index) { connection throws(MemcachedError) in try await connection.flushAll() }
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    /// Closes server `index`'s shared and idle connections (those from before an outage);
    /// a borrowed one is closed when it comes back broken, or kept if it is sound.
    func dropConnections(toServer index: Int) async {
        let pool = pools[index]
        if !shared.isEmpty { await shared[index].releaseAll { await pool.release($0, broken: true) } }
        await pool.empty()
    }

    /// Drives the pools' timers (idle pings) until ``close()``, graceful shutdown or cancellation.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for pool in pools { group.addTask { try await pool.run() } }
        }
    }

    /// Closes every connection; later calls fail. Safe to call repeatedly.
    public func close() async {
        for (index, pool) in pools.enumerated() {
            if !shared.isEmpty { await shared[index].releaseAll(closing: true) { await pool.release($0) } }
            await pool.close()
        }
    }
}

import ConnectionKit
import Logging
import NIOClientSupport
import NIOCore
import NIOPosix
import RESP
import Synchronization
import Tracing

/// One connection to a Redis server, safe to share between tasks.
///
/// Commands sent concurrently are written at once, without waiting for one
/// another (pipelining), and each caller gets its own reply: replies come in
/// order. An error reply is thrown as a ``RedisError`` with code
/// ``RedisError/Code/server`` and leaves the connection usable; any
/// connection-class failure (timeout, reset, garbage) fails every pending
/// command at once and marks the connection ``isBroken``.
///
/// The socket lives on a SwiftNIO event loop; no call here blocks a thread.
public final class RedisConnection: Sendable, RedisCommandRunner, BreakableConnection {
    /// The settings it was opened with.
    public let configuration: RedisConfiguration
    let channel: any Channel
    let handler: NIOLoopBoundBox<RedisChannelHandler>
    private let broken: BrokenFlag
    /// The commands' spans, when the configuration traces.
    private let spans: ClientSpans?
    /// Requests handed over by tasks off the loop, written together by the next loop turn.
    private let outbox = Locked(Outbox())
    /// What the commands sent so far left of the session (``RedisSessionState``'s raw value).
    private let session = Atomic<UInt8>(0)
    /// Numbers the requests, so that a cancelled task's request can be found.
    private let requestNumbers = Atomic<UInt64>(0)

    struct Outbox: Sendable {
        var requests: [RedisRequest] = []
        var scheduled = false
    }

    private init(
        configuration: RedisConfiguration, channel: any Channel, handler: NIOLoopBoundBox<RedisChannelHandler>, broken: BrokenFlag
    ) {
        self.configuration = configuration
        self.channel = channel
        self.handler = handler
        self.broken = broken
        spans = ClientSpans(
            configuration.tracing, system: "redis", address: configuration.host, port: configuration.port,
            namespace: String(configuration.database))
    }

    /// Connects and runs the handshake: `HELLO 3` (with AUTH and SETNAME in it)
    /// for RESP3, else `AUTH` and `CLIENT SETNAME`; then `SELECT`. The handshake
    /// is pipelined (one round trip), and all of it must finish within
    /// ``RedisConfiguration/connectTimeout``.
    public static func connect(
        _ configuration: RedisConfiguration,
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "clustersql.redis")
    ) async throws(RedisError) -> RedisConnection {
        let started = ContinuousClock.now
        let deadline = started + configuration.connectTimeout
        let address = try await resolve(configuration, deadline: deadline)
        let loop = group.next()
        let broken = BrokenFlag()
        let box = NIOLoopBoundBox.makeBoxSendingValue(
            RedisChannelHandler(configuration: configuration, brokenFlag: broken), eventLoop: loop)
        let channel: any Channel
        do {
            channel = try await ClientChannel.connect(
                to: address, host: configuration.host, on: loop, tls: configuration.tls,
                connectTimeout: configuration.connectTimeout, deadline: deadline
            ) { pipeline in try pipeline.addHandler(box.value) }
        } catch {
            throw RedisError(
                error.code(
                    connectTimeout: .connectTimeout, connectFailed: .connectFailed, tlsFailed: .tlsFailed,
                    invalidConfiguration: .invalidConfiguration),
                message: error.message, endpoint: configuration.endpoint)
        }
        let connection = RedisConnection(configuration: configuration, channel: channel, handler: box, broken: broken)
        do {
            try await connection.handshake(deadline: deadline)
        } catch {
            await connection.close()
            throw error
        }
        logger.debug("redis connected", metadata: ["endpoint": "\(configuration.endpoint)"])
        return connection
    }

    private static func resolve(
        _ configuration: RedisConfiguration, deadline: ContinuousClock.Instant
    ) async throws(RedisError) -> SocketAddress {
        if let address = try? SocketAddress(ipAddress: configuration.host, port: configuration.port) { return address }
        // getaddrinfo blocks: it runs on NIO's blocking pool, never on an event loop or the cooperative pool.
        let host = configuration.host
        let port = configuration.port
        do {
            return try await NIOThreadPool.singleton.runIfActive { try SocketAddress.makeAddressResolvingHost(host, port: port) }
        } catch {
            throw RedisError(.connectFailed, message: "cannot resolve host \(host): \(error)", endpoint: configuration.endpoint)
        }
    }

    private func handshake(deadline: ContinuousClock.Instant) async throws(RedisError) {
        let commands = Self.handshakeCommands(configuration)
        guard !commands.isEmpty else { return }
        let remaining = ContinuousClock.now.duration(to: deadline)
        let handler = self.handler
        let timeout = configuration.connectTimeout
        let guardTimer = channel.eventLoop.scheduleTask(in: TimeAmount(max(.zero, remaining))) {
            handler.value.fail(RedisError(.connectTimeout, message: "the handshake did not finish within \(timeout)"))
        }
        defer { guardTimer.cancel() }
        for result in await unTracedPipeline(commands) {  // the handshake is part of the connect, not a traced command
            if case .failure(let error) = result { throw error }
        }
    }

    /// `HELLO 3` (with AUTH and SETNAME in it) for RESP3, else `AUTH` and `CLIENT SETNAME`; then `SELECT`.
    private static func handshakeCommands(_ configuration: RedisConfiguration) -> [RedisCommand] {
        var commands: [RedisCommand] = []
        switch configuration.protocolVersion {
        case .resp3:
            var arguments: [any RedisArgument] = ["3"]
            if let password = configuration.password { arguments += ["AUTH", configuration.username ?? "default", password] }
            if let name = configuration.clientName { arguments += ["SETNAME", name] }
            commands.append(RedisCommand("HELLO", arguments: arguments))
        case .resp2:
            if let password = configuration.password {
                commands.append(configuration.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
            }
            if let name = configuration.clientName { commands.append(RedisCommand("CLIENT", "SETNAME", name)) }
        }
        if configuration.database != 0 { commands.append(RedisCommand("SELECT", configuration.database)) }
        return commands
    }

    // MARK: session

    /// Whether the commands sent on this connection left its session as a new connection's:
    /// no `MULTI` or `WATCH` open, no subscription, and no `SELECT`, `AUTH`, `HELLO`,
    /// `CLIENT REPLY`/`TRACKING` and the like. A pool hands a connection to the next
    /// borrower only when it is (``resetSession()`` makes it so, or the pool closes it).
    /// Commands sent on the raw connection are seen too; the typed helpers change nothing.
    package var sessionIsClean: Bool { session.load(ordering: .acquiring) == 0 }

    /// Takes the session as it is now for a new connection's (what a pool's dial hook set up).
    func markSessionNew() { session.store(0, ordering: .releasing) }

    /// Takes in what `command` does to the session; the error for a command that must not be
    /// sent at all (``RedisSessionEffect/breaksReplies``).
    private func note(_ command: RedisCommand) -> RedisError? {
        let effect = RedisSessionEffect.of(command)
        guard effect != .none else { return nil }
        if effect == .breaksReplies {
            return RedisError(
                .misuse, message: "\(command.name) would make replies stop or come unasked, and requests receive others' replies; not sent",
                endpoint: configuration.endpoint, command: command.name)
        }
        var current = session.load(ordering: .relaxed)
        while true {
            let next = RedisSessionState(rawValue: current).after(effect).rawValue
            let (exchanged, original) = session.compareExchange(
                expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged { return nil }
            current = original
        }
    }

    /// Makes the session a new connection's again: `RESET` (Redis 6.2 and later: it ends
    /// `MULTI`, `WATCH`, tracking and reply modes, and logs the connection out), then the
    /// handshake again (authentication, protocol, name, database), in one round trip within
    /// the connect timeout. `false` when it cannot (a subscription, whose messages may still
    /// be on their way; a server without `RESET`; any failure): the connection must be closed.
    package func resetSession() async -> Bool {
        let state = RedisSessionState(rawValue: session.load(ordering: .acquiring))
        if state.isEmpty { return !isBroken }
        guard !state.contains(.subscribed), !isBroken else { return false }
        let handler = self.handler
        let timeout = configuration.connectTimeout
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            handler.value.fail(RedisError(.readTimeout, message: "the session reset did not finish within \(timeout)"))
        }
        defer { timer.cancel() }
        let replies = await unTracedPipeline([RedisCommand("RESET")] + Self.handshakeCommands(configuration))
        guard case .success(.simpleString("RESET")) = replies.first,
            replies.allSatisfy({ if case .success = $0 { true } else { false } })
        else { return false }
        session.store(0, ordering: .releasing)
        return true
    }

    // MARK: commands

    /// Sends one command and returns its reply; an error reply is thrown.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        try await sendOne(command).get()
    }

    /// One command and its one reply, in a span when the configuration traces: what every
    /// caller of the package (pools, Sentinel leases) sends a command with.
    @inline(__always)
    func sendOne(_ command: RedisCommand) async -> Result<RESPValue, RedisError> {
        guard let spans else { return await send(command, expecting: .one) }
        return await traced(command, spans)
    }

    private func traced(_ command: RedisCommand, _ spans: ClientSpans) async -> Result<RESPValue, RedisError> {
        do throws(RedisError) {
            return .success(
                try await spans.span(command.name, errorType: { $0.code.description }) { () async throws(RedisError) in
                    try await send(command, expecting: .one).get()
                })
        } catch {
            return .failure(error)
        }
    }

    /// One command and its reply. A cancelled task is answered at once
    /// (``RedisError/Code/cancelled``): a command not yet written is never written, and one
    /// already written keeps its place in the stream, its reply dropped when it comes, so that
    /// every later command still gets its own reply and the connection stays usable.
    @inline(__always)  // one async frame less per command on the hot path
    func send(_ command: RedisCommand, expecting expectation: ReplyExpectation) async -> Result<RESPValue, RedisError> {
        if let refusal = note(command) { return .failure(refusal) }
        let handler = self.handler
        let outbox = self.outbox
        let id = requestNumbers.wrappingAdd(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: ReplyContinuation) in
                let request = RedisRequest(command: command, expectation: expectation, continuation: continuation, id: id)
                if handler.eventLoop.inEventLoop {
                    handler.value.enqueue(request)  // already on the loop (NIO as the global executor): no hop
                    if Task.isCancelled { abandon(id) }
                    return
                }
                // Requests from many tasks share one hop to the loop: only the first of a batch schedules it.
                let first = outbox.withLock { box -> Bool in
                    box.requests.append(request)
                    defer { box.scheduled = true }
                    return !box.scheduled
                }
                if first {
                    handler.eventLoop.execute {
                        let requests = outbox.withLock { box -> [RedisRequest] in
                            box.scheduled = false
                            defer { box.requests.removeAll(keepingCapacity: true) }
                            return box.requests
                        }
                        handler.value.enqueue(requests)
                    }
                }
                // A cancellation before the request was handed over found nothing to abandon: again.
                if Task.isCancelled { handler.eventLoop.execute { self.abandon(id) } }
            }
        } onCancel: {
            handler.eventLoop.execute { self.abandon(id) }
        }
    }

    /// Answers request `id` with ``RedisError/Code/cancelled`` if it still waits: taken out of
    /// the outbox when not yet handed over (never written), else its reply is dropped when it
    /// comes. On the event loop, where the outbox's hand-over also runs.
    private func abandon(_ id: UInt64) {
        let cancelled = RedisError(
            .cancelled, message: "the task was cancelled; the command may have run, its reply is dropped",
            endpoint: configuration.endpoint)
        let unsent = outbox.withLock { box -> RedisRequest? in
            guard let index = box.requests.firstIndex(where: { $0.id == id }) else { return nil }
            return box.requests.remove(at: index)
        }
        if let unsent {
            unsent.continuation.resume(returning: .failure(cancelled.at(configuration.endpoint, command: unsent.command.name)))
        } else {
            for target in handler.value.abandon(id) { target.complete(.failure(cancelled)) }
        }
    }

    /// Sends one command and waits at most `timeout` for its reply, or until the
    /// task is cancelled; either one closes the connection (its replies would be
    /// out of step) and fails what is pending on it. For checks of a node that
    /// may hang: a `ROLE` probe, a question to a sentinel.
    func send(_ command: RedisCommand, within timeout: Duration) async -> Result<RESPValue, RedisError> {
        let handler = self.handler
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            handler.value.fail(RedisError(.readTimeout, message: "no reply within \(timeout)"))
        }
        defer { timer.cancel() }
        let channel = self.channel
        let broken = self.broken
        return await withTaskCancellationHandler {
            await send(command, expecting: .one)
        } onCancel: {
            broken.set()
            channel.close(promise: nil)
        }
    }

    /// Sends `commands` in one write and returns each one's reply or error, in
    /// order: one round trip for all of them. A cancelled task gets at once the replies that
    /// came and ``RedisError/Code/cancelled`` for the others; the connection stays usable.
    public func pipeline(_ commands: [RedisCommand]) async -> [Result<RESPValue, RedisError>] {
        guard !commands.isEmpty else { return [] }
        for command in commands {
            if let refusal = note(command) { return commands.map { _ in .failure(refusal) } }
        }
        guard let spans else { return await unTracedPipeline(commands) }
        let names = commands.map(\.name)
        return await spans.span(
            "PIPELINE",
            extra: {
                $0["db.operation.batch.size"] = commands.count
                $0["clustersql.commands"] = names
            }
        ) { () async in await unTracedPipeline(commands) }
    }

    private func unTracedPipeline(_ commands: [RedisCommand]) async -> [Result<RESPValue, RedisError>] {
        let handler = self.handler
        let id = requestNumbers.wrappingAdd(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                handler.eventLoop.execute { handler.value.enqueue(commands, id: id, continuation: continuation) }
                // A cancellation that ran before the batch reached the loop found nothing: again, after it.
                if Task.isCancelled { handler.eventLoop.execute { self.abandon(id) } }
            }
        } onCancel: {
            handler.eventLoop.execute { self.abandon(id) }
        }
    }

    /// Makes the connection flush once per event-loop turn instead of once per
    /// command, so that commands sent together by many tasks leave in one write.
    func coalesceFlushes() async {
        let handler = self.handler
        try? await handler.eventLoop.submit { handler.value.coalescesFlushes = true }.get()
    }

    /// Whether the connection saw a connection-class failure or was closed: it must not be used again.
    public var isBroken: Bool { broken.isSet }

    /// Closes the connection; pending commands fail with ``RedisError/Code/connectionClosed``. Safe to call repeatedly.
    public func close() async {
        broken.set()
        try? await channel.close()
    }
}

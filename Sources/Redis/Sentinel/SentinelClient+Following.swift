import ConnectionKit
import Logging
import RESP
import ServiceLifecycle
import Tracing

extension SentinelClient {
    /// Finds the masters and follows them until ``close()``, graceful shutdown or
    /// cancellation: one checking loop per master name, subscriptions on several
    /// sentinels, and the timers of every pool the client makes. Then closes the client.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for master in masters.values {
                    group.addTask { await self.follow(master) }
                }
                for slot in 0..<max(0, configuration.subscriptions) {
                    group.addTask { await self.listen(slot: slot) }
                }
                for await pool in newPools.stream {
                    group.addTask { try? await pool.run() }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.newPools.continuation.finish()
        }
        await close()
    }

    // MARK: checking

    /// One master name's loop: look for a master while none is served, else check
    /// the served one every recheck interval, or sooner when woken.
    private func follow(_ master: FollowedMaster) async {
        var rechecks = 0
        while !Task.isCancelled && !isClosed {
            if master.needsResolution {
                await resolve(master)
            } else if let serving = master.serving {
                // The sentinel list is refreshed at the first check and every tenth after it.
                await recheck(master, serving, refreshSentinels: rechecks % 10 == 0)
                rechecks += 1
            }
            if master.replicas.wanted, master.serving != nil { await refreshReplicas(master) }
            // Not more often than every 50 ms, however many failures wake it.
            try? await Task.sleep(for: .milliseconds(50))
            let pause = master.needsResolution ? .milliseconds(100) : configuration.recheckInterval
            await master.wakeup.sleep(until: .now + pause)
        }
    }

    /// Asks every sentinel at once; the first named address whose `ROLE` says master
    /// becomes the master, at once (the other answers are only recorded).
    private func resolve(_ master: FollowedMaster) async {
        let found = Locked(false)
        let tried = Locked<Set<SentinelAddress>>([])
        let answers = await directory.askMasterAddress(of: master.name) { _, answer in
            guard case .master(let address, let epoch) = answer, tried.withLock({ $0.insert(address).inserted }) else { return false }
            let role = await self.role(of: address)
            guard role == .master else {
                self.logger.debug(
                    "the named master is not one", metadata: ["master": "\(master.name)", "address": "\(address)", "role": "\(role)"])
                return false
            }
            guard !self.isClosed else { return true }
            await self.switchTo(address, epoch: epoch, of: master, observed: nil)
            found.withLock { $0 = true }
            return true
        }
        master.counters.answers(answers)
        if !found.withLock({ $0 }) {
            let problem = SentinelAnswer.problem(answers, masterName: master.name)
            // Once per problem, not once per 100 ms poll while it lasts.
            if master.noteProblem("\(problem)") {
                logger.warning("no master found", metadata: ["master": "\(master.name)", "problem": "\(problem)"])
            }
            _ = await master.apply { $0.resolutionFailed(problem) }
        }
    }

    /// Asks every sentinel and the master itself. Moves to the address named with
    /// the newest config epoch, when that is newer than the served master's and the
    /// address answers as master (a sentinel with an older view, cut off or behind,
    /// never moves the client); leaves a master whose `ROLE` says replica.
    private func recheck(_ master: FollowedMaster, _ serving: FollowedMaster.Serving, refreshSentinels: Bool) async {
        let answers = await directory.askMasterAddress(of: master.name)
        master.counters.answers(answers)
        if let newest = SentinelAnswer.newest(answers) {
            if newest.address == serving.address {
                if let epoch = newest.epoch, epoch > (serving.epoch ?? -1) {
                    _ = await master.apply { $0.confirmed(serving.address, epoch: epoch, observed: serving.generation) }
                }
            } else if let epoch = newest.epoch, let servedEpoch = serving.epoch, epoch > servedEpoch,
                await role(of: newest.address) == .master
            {
                await switchTo(newest.address, epoch: epoch, of: master, observed: serving.generation)
                return
            }
        }
        if case .replica = await role(of: serving.address) {
            logger.warning("the master answers as a replica", metadata: ["master": "\(master.name)", "address": "\(serving.address)"])
            _ = await master.apply { $0.demoted(generation: serving.generation) }
            master.wakeup.wake()
        }
        if refreshSentinels { await learnSentinels(of: master.name) }
    }

    /// Serves `address` (verified just now) as `master`'s master, unless what was
    /// served when the check began (`observed`) changed meanwhile.
    ///
    /// With tracing on, a `clustersql.sentinel.switch` span records it: the master's name, the
    /// address switched from and to, the epoch, and whether the switch happened.
    func switchTo(_ address: SentinelAddress, epoch: Int?, of master: FollowedMaster, observed: Int?) async {
        let span = configuration.dataNodes.tracing.activeTracer?.startSpan("clustersql.sentinel.switch", ofKind: .internal)
        defer { span?.end() }
        let pool = makePool(for: address, of: master.name)
        let actions = await master.apply { $0.verified(address, pool: pool, epoch: epoch, observed: observed) }
        span?.updateAttributes { attributes in
            attributes["clustersql.sentinel.master"] = master.name
            attributes["clustersql.sentinel.to"] = address.description
            if let epoch { attributes["clustersql.sentinel.epoch"] = epoch }
            attributes["clustersql.sentinel.switched"] = actions.switched != nil
            if let from = actions.switched?.from { attributes["clustersql.sentinel.from"] = from.description }
        }
        if let switched = actions.switched {
            _ = master.noteProblem(nil)
            logger.info(
                "following a new master",
                metadata: ["master": "\(master.name)", "from": "\(switched.from.map(\.description) ?? "-")", "to": "\(address)"])
        }
    }

    private func role(of address: SentinelAddress) async -> NodeRole {
        await NodeRole.probe(address, configuration: configuration, timeout: configuration.sentinelTimeout, on: group, logger: logger)
    }

    /// Adds the sentinels the first answering sentinel knows (`SENTINEL sentinels NAME`).
    private func learnSentinels(of name: String) async {
        for sentinel in directory.known {
            guard case .success(let reply) = await directory.ask(sentinel, RedisCommand("SENTINEL", "sentinels", name)) else { continue }
            directory.learn(SentinelDirectory.instances(reply).map(\.address))
            return
        }
    }

    /// Lists the replicas (`SENTINEL replicas NAME` from the first sentinel that
    /// answers), drops those flagged down or disconnected, and keeps those whose
    /// `ROLE` says a connected replica.
    private func refreshReplicas(_ master: FollowedMaster) async {
        var listed: [SentinelAddress]?
        for sentinel in directory.known {
            guard case .success(let reply) = await directory.ask(sentinel, RedisCommand("SENTINEL", "replicas", master.name)) else {
                continue
            }
            listed = SentinelDirectory.instances(reply).filter { $0.flags.isDisjoint(with: ["s_down", "o_down", "disconnected"]) }.map(
                \.address)
            break
        }
        guard let listed, let served = master.serving?.address else { return }  // no sentinel answered: keep what was verified
        let verified = await withTaskGroup(of: SentinelAddress?.self) { group in
            for address in listed {
                group.addTask {
                    // A connected replica of the served master (a replica still following an old master would serve stale data).
                    guard case .replica(let following, connected: true) = await self.role(of: address) else { return nil }
                    return following.map { Self.sameNode($0, served) } ?? true ? address : nil
                }
            }
            var verified: [SentinelAddress] = []
            for await address in group { if let address { verified.append(address) } }
            return verified
        }
        guard !isClosed else { return }
        let (added, removed) = master.replicas.replace(with: verified) { makePool(for: $0, of: master.name) }
        if !added.isEmpty || !removed.isEmpty {
            logger.info("replicas changed", metadata: ["master": "\(master.name)", "replicas": "\(master.replicas.addresses)"])
        }
        for pool in removed { await pool.close() }
    }

    /// Whether a replica's master address (as it was configured, maybe a host name)
    /// and the served master's (as the sentinels name it) are the same node: ports
    /// must match, and hosts too when both are IP addresses.
    static func sameNode(_ lhs: SentinelAddress, _ rhs: SentinelAddress) -> Bool {
        guard lhs.port == rhs.port else { return false }
        let bothAddresses = [lhs.host, rhs.host].allSatisfy { host in host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." } }
        return !bothAddresses || lhs.host == rhs.host
    }

    // MARK: listening

    /// The channels whose messages make the client act.
    static let eventChannels = ["+switch-master", "+sdown", "-sdown", "+odown", "-odown", "+slave", "+sentinel", "+role-change"]

    /// Subscription `slot`: subscribes to the events of sentinel number `slot` (the next
    /// one after a failure) and pings it every recheck interval, so a subscription
    /// that silently died is noticed and made again.
    private func listen(slot: Int) async {
        var attempt = 0
        // A sentinel that refuses us (down, wrong password) is retried ever more slowly, up to the recheck interval.
        var backoff = Backoff(
            policy: BackoffPolicy(initial: .milliseconds(100), maximum: max(.milliseconds(100), configuration.recheckInterval)))
        while !Task.isCancelled && !isClosed {
            let known = directory.known
            guard slot < known.count else {
                await sleepQuietly(configuration.recheckInterval)
                continue
            }
            let address = known[(slot + attempt) % known.count]
            do throws(RedisError) {
                let subscriber = try await RedisSubscriber.connect(configuration.sentinelConnection(address), on: group, logger: logger)
                backoff.reset()
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.keepAlive(subscriber) }
                    group.addTask {
                        do {
                            try await subscriber.subscribe(Self.eventChannels)
                            for try await message in subscriber.messages { await self.handle(message) }
                        } catch {}
                        await subscriber.close()
                    }
                    await group.next()
                    group.cancelAll()
                    await subscriber.close()
                }
                logger.debug("sentinel subscription ended", metadata: ["sentinel": "\(address)"])
            } catch {
                logger.debug("cannot subscribe to a sentinel", metadata: ["sentinel": "\(address)", "error": "\(error.code)"])
            }
            attempt += 1
            await sleepQuietly(backoff.next())
        }
    }

    private func keepAlive(_ subscriber: RedisSubscriber) async {
        while !Task.isCancelled && !subscriber.isBroken {
            await sleepQuietly(configuration.recheckInterval)
            guard !Task.isCancelled else { return }
            guard await subscriber.ping(within: configuration.sentinelTimeout) else { return }
        }
    }

    private func sleepQuietly(_ duration: Duration) async {
        try? await Task.sleep(for: duration)
    }

    /// `+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT`: verify and switch now;
    /// any other event about a followed master: check it now.
    private func handle(_ message: RedisPubSubMessage) async {
        let received = ContinuousClock.now
        let words = message.text.split(separator: " ").map(String.init)
        if message.channel == "+switch-master", words.count == 5, let master = masters[words[0]], let port = Int(words[4]) {
            let address = SentinelAddress(host: words[3], port: port)
            let observed = master.serving
            guard observed?.address != address else {
                master.announcedAfterSwitch()
                return
            }
            master.announced(at: received)
            logger.info("+switch-master", metadata: ["master": "\(master.name)", "to": "\(address)"])
            if await role(of: address) == .master {
                await switchTo(address, epoch: nil, of: master, observed: observed?.generation)
            } else {
                master.wakeup.wake()
            }
            return
        }
        // "<type> <name> <ip> <port> @ <master> <ip> <port>" for replicas and sentinels, "master <name> <ip> <port>" for masters.
        let name =
            words.firstIndex(of: "@").flatMap { words.indices.contains($0 + 1) ? words[$0 + 1] : nil } ?? (words.count > 1 ? words[1] : "")
        masters[name]?.wakeup.wake()
    }
}

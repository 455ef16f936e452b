import ConnectionKit
import MetricsTestKit
import RESP
import Redis
import TestServers
import Testing

/// What the write loop of the failover test saw.
private struct WriteTally: Sendable {
    var acknowledged = 0
    var failed = 0
    var readOnlyAfterSwitch = 0
    var acknowledgedAfterSwitch = 0
}

@Suite("SentinelClient follows failovers (real redis-server and redis-sentinel)", .serialized, .timeLimit(.minutes(3)))
struct SentinelFailoverTests {
    @Test("failover under load: after the switch is seen no write reaches the old master, the loop resumes, no durable increment is lost")
    func failoverUnderLoad() async throws {
        try await withTopology("load", replicas: 2) { topology in  // after the failover the new master still has a replica to WAIT for
            try await withSentinelClient(
                topology,
                {
                    $0.retryReadOnly = false
                    $0.durableWrites = DurableWrites(replicas: 1, timeout: .seconds(1))
                }
            ) { client in
                let old = topology.servers[0]
                let master = client.master(topology.masterName)
                try await master.set("counter", to: 0)
                #expect(client.currentMaster(topology.masterName) == old.sentinelAddress)
                let tally = Locked(WriteTally())
                let switchSeen = Locked<ContinuousClock.Instant?>(nil)
                let stop = Locked(false)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<16 {
                        group.addTask {
                            while !stop.withLock({ $0 }) {
                                let issuedAfterSwitch = switchSeen.withLock { $0 != nil }
                                do throws(RedisError) {
                                    try await master.increment("counter")
                                    tally.withLock {
                                        $0.acknowledged += 1
                                        if issuedAfterSwitch { $0.acknowledgedAfterSwitch += 1 }
                                    }
                                } catch {
                                    tally.withLock {
                                        $0.failed += 1
                                        if issuedAfterSwitch && error.prefix == "READONLY" { $0.readOnlyAfterSwitch += 1 }
                                    }
                                    try await Task.sleep(for: .milliseconds(5))
                                }
                            }
                        }
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    try await old.kill()
                    try await eventually("the client follows the failover") {
                        client.currentMaster(topology.masterName).map { $0 != old.sentinelAddress } ?? false
                    }
                    switchSeen.withLock { $0 = .now }
                    let before = tally.withLock { $0.acknowledgedAfterSwitch }
                    try await eventually("writes resume after the switch") { tally.withLock { $0.acknowledgedAfterSwitch } > before + 200 }
                    stop.withLock { $0 = true }
                    try await group.waitForAll()
                }
                let seen = tally.withLock { $0 }
                let newMaster = try #require(topology.servers.first { $0.sentinelAddress == client.currentMaster(topology.masterName) })
                let counter = Int(try await newMaster.cli("GET", "counter")) ?? -1
                #expect(seen.readOnlyAfterSwitch == 0)
                // Writes that could not reach the dead master waited for the new one (waitForFailover);
                // only those in flight when the connections broke may fail: about one per task.
                #expect(seen.failed < 100, "\(seen.failed) writes failed across the failover")
                #expect(counter >= seen.acknowledged, "every acknowledged (durable) increment survives: \(counter) ≥ \(seen.acknowledged)")
                let statistics = try #require(client.statistics().first)
                #expect(statistics.failoversFollowed == 1)
                #expect(statistics.generation == 2)
            }
        }
    }

    @Test(
        "a manual failover (SENTINEL FAILOVER, the old master stays up and is demoted): writes ride through, READONLY and unsent ones sent again on the new master"
    )
    func manualFailover() async throws {
        try await withTopology("manual") { topology in
            try await withSentinelClient(topology) { client in
                let old = topology.servers[0]
                let master = client.master(topology.masterName)
                let lease = try await client.getMaster(topology.masterName)
                let tally = Locked(WriteTally())
                let stop = Locked(false)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            while !stop.withLock({ $0 }) {
                                do throws(RedisError) {
                                    try await master.increment("manual")
                                    tally.withLock { $0.acknowledged += 1 }
                                } catch {
                                    tally.withLock { $0.failed += 1 }
                                    try await Task.sleep(for: .milliseconds(5))
                                }
                            }
                        }
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    try await topology.sentinels[1].cli("SENTINEL", "FAILOVER", topology.masterName)
                    let new = try await topology.waitForFailover(from: old)
                    try await eventually("the client follows") { client.currentMaster(topology.masterName) == new.sentinelAddress }
                    let before = tally.withLock { $0.acknowledged }
                    try await eventually("writes go on") { tally.withLock { $0.acknowledged } > before + 100 }
                    stop.withLock { $0 = true }
                    try await group.waitForAll()
                }
                #expect(try await old.cli("PING") == "PONG", "the old master is still up")
                try await eventually("a lease to the demoted master is closed") { lease.connection.isBroken }
                await client.putMaster(lease)
                let failed = tally.withLock { $0.failed }
                // Only writes in flight when the sentinel killed the old master's clients may fail.
                #expect(failed <= 16, "\(failed) writes failed across a manual failover")
                let statistics = try #require(client.statistics().first)
                #expect(statistics.failoversFollowed == 1)
            }
        }
    }

    @Test(
        "8 leases held across each of 5 SENTINEL FAILOVERs under a write loop, each used the moment the client serves the new master: none reaches the old master"
    )
    func heldLeasesAreFenced() async throws {
        try await withTopology("fenced") { topology in
            try await withSentinelClient(topology) { client in
                let name = topology.masterName
                let master = client.master(name)
                for round in 1...5 {
                    var leases: [SentinelLease] = []
                    for _ in 0..<8 { leases.append(try await client.getMaster(name)) }
                    let old = try #require(topology.servers.first { $0.sentinelAddress == leases[0].address }, "round \(round)")
                    #expect(leases.allSatisfy { $0.address == old.sentinelAddress })
                    _ = try await old.cli("CONFIG", "RESETSTAT")
                    let stop = Locked(false)
                    let refused = Locked(0)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            while !stop.withLock({ $0 }) {
                                do { try await master.increment("loop") } catch { try await Task.sleep(for: .milliseconds(5)) }
                            }
                        }
                        // A sentinel takes a failover once it has seen the replica (the last one's old master) in sync.
                        try await eventually("a sentinel takes the failover", timeout: .seconds(30), every: .milliseconds(200)) {
                            (try? await topology.sentinels[0].cli("SENTINEL", "FAILOVER", name)) == "OK"
                        }
                        // The moment the client serves another master, every held lease writes at once.
                        try await eventually("the client follows in round \(round)", every: .milliseconds(1)) {
                            client.currentMaster(name).map { $0 != old.sentinelAddress } ?? false
                        }
                        await withTaskGroup(of: Void.self) { writes in
                            for lease in leases {
                                writes.addTask {
                                    do {
                                        _ = try await lease.send("HINCRBY", "fenced", "writes", 1)
                                        Issue.record("round \(round): a lease borrowed from the old master wrote after the switch")
                                    } catch {
                                        #expect((error as? RedisError)?.code == .masterChanged, "round \(round): \(error)")
                                        refused.withLock { $0 += 1 }
                                    }
                                }
                            }
                        }
                        stop.withLock { $0 = true }
                        try await group.waitForAll()
                    }
                    #expect(refused.withLock { $0 } == 8, "round \(round)")
                    let stats = try await old.cli("INFO", "commandstats")
                    #expect(!stats.contains("cmdstat_hincrby"), "round \(round): the old master ran no lease's write: \(stats)")
                    for lease in leases { await client.putMaster(lease) }
                }
                let fresh = try await client.getMaster(name)
                #expect(try await fresh.send("HINCRBY", "fenced", "writes", 1) == .integer(1), "a new lease writes to the new master")
                await client.putMaster(fresh)
            }
        }
    }

    @Test("every announcement missed (no subscription) and a sentinel paused: the periodic check alone moves the client")
    func missedAnnouncement() async throws {
        try await withTopology("missed") { topology in
            try await withSentinelClient(topology, { $0.subscriptions = 0 }) { client in
                let old = topology.servers[0]
                try await client.master(topology.masterName).set("k", to: "v")
                await topology.sentinels[0].pause()  // its answers time out at every check
                defer { topology.sentinels[0].resume() }
                try await old.kill()
                let new = try await topology.waitForFailover(from: old)
                try await eventually("the timer moves the client") { client.currentMaster(topology.masterName) == new.sentinelAddress }
                try await client.master(topology.masterName).set("k", to: "after")
                #expect(try await new.cli("GET", "k") == "after")
            }
        }
    }

    @Test(
        "a lease held across a failover is closed when returned, never reused; two failovers in a row; the old master as replica gets no write"
    )
    func leaseAcrossFailoverAndTwoFailovers() async throws {
        let metrics = TestMetrics()
        try await withTopology("twice") { topology in
            try await withSentinelClient(topology, metrics: metrics) { client in
                let name = topology.masterName
                let first = topology.servers[0]
                let lease = try await client.getMaster(name)
                #expect(lease.address == first.sentinelAddress)
                try await first.kill()
                let second = try await topology.waitForFailover(from: first)
                try await eventually("the client follows") { client.currentMaster(name) == second.sentinelAddress }
                try await eventually("a borrowed connection to the old master is closed at the switch") { lease.connection.isBroken }
                await client.putMaster(lease)
                let next = try await client.getMaster(name)
                #expect(next.connection !== lease.connection)
                #expect(next.address == second.sentinelAddress)
                _ = try await next.send("SET", "step", "two")
                await client.putMaster(next)

                // Back: the old master returns as a replica, then the new master dies.
                try await topology.restartAsReplica(first, of: second)
                try await topology.waitUntilReplicaSeen(first)
                for index in 0..<50 { try await client.master(name).set("while-replica-\(index)", to: "x") }
                #expect(try #require(client.statistics().first).readOnlyReplies == 0, "the old master, now a replica, got no write")
                try await second.kill()
                let third = try await topology.waitForFailover(from: second)
                #expect(third.port == first.port)
                try await eventually("the client follows the second failover") { client.currentMaster(name) == first.sentinelAddress }
                try await client.master(name).set("step", to: "three")
                #expect(try await first.cli("GET", "step") == "three")
                #expect(try #require(client.statistics().first).failoversFollowed == 2)
            }
        }
        #expect(try metrics.expectCounter("clustersql_sentinel_failovers_total", [("master", "twice")]).totalValue == 2)
        #expect(try metrics.expectTimer("clustersql_sentinel_follow_seconds", [("master", "twice")]).values.count >= 1)
        #expect(try metrics.expectCounter("clustersql_sentinel_old_connections_closed_total", [("master", "twice")]).totalValue >= 1)
    }

    @Test("clean shutdown while a failover is in progress: run() returns, waiters fail typed, no connection is left on the new master")
    func shutdownDuringFailover() async throws {
        try await withTopology("shutdown") { topology in
            let client = try SentinelClient(configuration: sentinelConfiguration(topology) { $0.dataNodes.clientName = "shutdown-test" })
            let old = topology.servers[0]
            try await whileRunning(client) {
                try await client.master(topology.masterName).set("k", to: "v")
                _ = try await client.replicas(topology.masterName).get("k")
                try await old.kill()
                try await Task.sleep(for: .milliseconds(1500))  // the sentinels are electing a leader
            }
            do throws(RedisError) {
                _ = try await client.getMaster(topology.masterName)
                Issue.record("a closed client hands out no lease")
            } catch {
                #expect(error.code == .clientClosed)
            }
            let new = try await topology.waitForFailover(from: old)
            try await eventually("no connection of the client is left on the new master") {
                !(try await new.cli("CLIENT", "LIST")).contains("name=shutdown-test")
            }
        }
    }
}

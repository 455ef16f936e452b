import NIOCore
import RESP
import Redis
import TestServers
import TestSupport
import Testing

@Suite(
    "SentinelClient: discovery, credentials and replica reads (real redis-server and redis-sentinel)", .serialized, .timeLimit(.minutes(3)))
struct SentinelDiscoveryTests {
    @Test(
        "the first sentinel in the list down at start changes nothing; leases, send and statistics work; an unknown master name is typed, fast and logged once"
    )
    func firstSentinelDownAndUnknownName() async throws {
        try await withTopology("discovery") { topology in
            let sentinels = [try deadAddress()] + topology.sentinelAddresses
            try await withSentinelClient(topology, sentinels: sentinels) { client in
                let name = topology.masterName
                let value = try await client.withMaster(name) { lease in
                    _ = try await lease.send("SET", "greeting", "hello")
                    return try await lease.getString("greeting")
                }
                #expect(value == "hello")
                #expect(try await client.send(RedisCommand("GET", "greeting"), toMaster: name) == .bulkString(.init(string: "hello")))
                #expect(client.statistics().first?.master == topology.servers[0].sentinelAddress)
                // Every check hears every sentinel; the dead one is reported, the others name the master.
                let master = topology.servers[0].sentinelAddress
                try await eventually("every sentinel is reported") {
                    let reports = client.statistics().first?.sentinels ?? []
                    return reports.count == 4 && reports.filter { $0.problem != nil }.count == 1
                        && reports.filter { $0.names == master }.count == 3
                }
            }
            var configuration = sentinelConfiguration(topology)
            configuration.masterNames = ["no-such-master"]
            let logs = LogCapture()
            let client = try SentinelClient(configuration: configuration, logger: logs.logger())
            try await whileRunning(client) {
                let started = ContinuousClock.now
                do throws(RedisError) {
                    _ = try await client.getMaster("no-such-master")
                    Issue.record("an unknown master name must fail")
                } catch {
                    #expect(error.code == .masterUnknown)
                    #expect(error.fromSentinel)
                }
                #expect(started.duration(to: .now) < .seconds(3), "masterUnknown is said at once, not after the master wait")
                // The client looks again every 100 ms while no master is found: the state is logged, not each look.
                try await Task.sleep(for: .seconds(1))
                let loud = logs.all.filter { !$0.hasPrefix("trace") && !$0.hasPrefix("debug") }
                #expect(loud.filter { $0.contains("no master found") }.count == 1, "\(loud)")
                #expect(loud.count <= 3, "\(loud)")
            }
        }
    }

    @Test("one sentinel configured: the others are learnt from it, and the client follows a failover after that one is killed")
    func sentinelsLearnt() async throws {
        try await withTopology("learn") { topology in
            try await withSentinelClient(topology, sentinels: [topology.sentinelAddresses[0]]) { client in
                let name = topology.masterName
                try await client.master(name).set("k", to: "v")
                try await eventually("the other sentinels are learnt") { client.sentinels.count == 3 }
                #expect(Set(client.sentinels.map(\.description)) == Set(topology.sentinelAddresses))
                try await topology.sentinels[0].kill()
                let old = topology.servers[0]
                try await old.kill()
                let new = try await topology.waitForFailover(from: old)
                try await eventually("the client follows through the learnt sentinels") {
                    client.currentMaster(name) == new.sentinelAddress
                }
                try await client.master(name).set("k", to: "after")
                #expect(try await new.cli("GET", "k") == "after")
            }
        }
    }

    @Test("all sentinels down: a typed error within the wait; the client recovers when they return")
    func allSentinelsDown() async throws {
        try await withTopology("alldown") { topology in
            for sentinel in topology.sentinels { try await sentinel.kill() }
            try await withSentinelClient(topology, { $0.masterWait = .seconds(2) }) { client in
                let started = ContinuousClock.now
                do throws(RedisError) {
                    _ = try await client.getMaster(topology.masterName)
                    Issue.record("no sentinel: no master")
                } catch {
                    #expect(error.code == .sentinelsUnreachable)
                    #expect(error.fromSentinel)
                }
                #expect(started.duration(to: .now) < .seconds(4))
                for sentinel in topology.sentinels { try await sentinel.restart() }
                try await eventually("the client finds the master once the sentinels are back") {
                    (try? await client.master(topology.masterName).set("back", to: "yes")) != nil
                }
            }
        }
    }

    @Test("the sentinels' password apart from the data nodes'; a wrong sentinel password is typed and shown nowhere")
    func sentinelCredentials() async throws {
        try await withTopology("auth", dataPassword: "data-secret-1", sentinelPassword: "sentinel-secret-2") { topology in
            try await withSentinelClient(topology) { client in
                try await client.master(topology.masterName).set("k", to: "v")
                #expect(try await client.master(topology.masterName).getString("k") == "v")
            }
            try await withSentinelClient(
                topology,
                {
                    $0.sentinelPassword = "wrong-sentinel-pw"
                    $0.masterWait = .seconds(2)
                }
            ) { client in
                do throws(RedisError) {
                    _ = try await client.getMaster(topology.masterName)
                    Issue.record("a wrong sentinel password must fail")
                } catch {
                    #expect(error.code == .sentinelsUnreachable)
                    #expect("\(error)".contains("credentials"), "\(error)")
                    #expect(!"\(error)".contains("wrong-sentinel-pw") && !"\(error)".contains("data-secret-1"))
                }
                #expect(!"\(client.configuration)".contains("wrong-sentinel-pw"))
                #expect(!"\(client.statistics())".contains("wrong-sentinel-pw"))
            }
        }
    }

    @Test(
        "replica reads, round-robin and latency-weighted: over healthy replicas, a SIGSTOPped one dropped, back on SIGCONT; durable writes per call",
        arguments: [ReplicaBalancing.roundRobin, .latency])
    func replicaReads(balancing: ReplicaBalancing) async throws {
        try await withTopology("replicas-\(balancing.rawValue)", replicas: 2) { topology in
            try await withSentinelClient(
                topology,
                {
                    $0.dataNodes.readTimeout = .seconds(1)
                    $0.replicaBalancing = balancing
                    $0.durableWrites = DurableWrites(replicas: 3, timeout: .milliseconds(100))  // one more than there are
                }
            ) { client in
                let name = topology.masterName
                do {
                    try await client.master(name).set("configured", to: "value")
                    Issue.record("a write acknowledged by 3 replicas of 2")
                } catch let error as RedisError {
                    #expect(error.code == .notDurable, "\(error)")
                }
                try await client.master(name, durable: nil).set("no wait", to: "value")
                try await client.master(name, durable: DurableWrites(replicas: 2)).set("shared", to: "value")
                let replicas = client.replicas(name)
                _ = try await replicas.get("shared")
                try await eventually("both replicas are used") { client.statistics().first?.replicas.count == 2 }
                for _ in 0..<20 { #expect(try await replicas.getString("shared") == "value") }
                let paused = topology.servers[1]
                await paused.pause()
                defer { paused.resume() }
                try await eventually("the paused replica is dropped") {
                    client.statistics().first?.replicas == [topology.servers[2].sentinelAddress]
                }
                for _ in 0..<20 { #expect(try await replicas.getString("shared") == "value") }
                paused.resume()
                try await eventually("the replica is back after SIGCONT") { client.statistics().first?.replicas.count == 2 }
            }
        }
    }

    @Test("without replicas, reads go to the master, or fail typed when configured so")
    func replicaFallback() async throws {
        try await withTopology("noreplica", replicas: 0) { topology in
            try await withSentinelClient(topology) { client in
                try await client.master(topology.masterName).set("k", to: "v")
                #expect(try await client.replicas(topology.masterName).getString("k") == "v")
            }
            try await withSentinelClient(topology, { $0.replicaFallback = .fail }) { client in
                do throws(RedisError) {
                    _ = try await client.replicas(topology.masterName).get("k")
                    Issue.record("no replica and no fallback must fail")
                } catch {
                    #expect(error.code == .noReplicaAvailable)
                }
            }
        }
    }
}

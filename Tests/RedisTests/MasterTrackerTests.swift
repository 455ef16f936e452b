import Foundation
import NIOCore
import RESP
import Testing

@testable import Redis

private let a = SentinelAddress(host: "127.0.0.1", port: 7001)
private let b = SentinelAddress(host: "127.0.0.1", port: 7002)

@Suite("MasterTracker and the reading of sentinel answers (no I/O)")
struct MasterTrackerTests {
    @Test("leases wait while resolving and get the first verified master; a second verification of the same address makes nothing")
    func waitersGetTheFirstMaster() {
        var tracker = MasterTracker<Int>(name: "m")
        guard case .wait = tracker.lease(waiter: 1) else {
            Issue.record("a lease waits while resolving")
            return
        }
        let actions = tracker.verified(a, pool: 10, epoch: 1, observed: nil)
        #expect(actions.resume.count == 1)
        guard case .master(let serving) = actions.resume.first?.result else {
            Issue.record("the waiter gets the master")
            return
        }
        #expect(serving.address == a && serving.pool == 10 && serving.generation == 1)
        #expect(actions.switched?.from == nil && actions.switched?.to == a)
        let again = tracker.verified(a, pool: 11, epoch: 1, observed: 1)
        #expect(again.discard == 11 && again.retire.isEmpty && again.switched == nil)
    }

    @Test("a switch retires the old pool and bumps the generation; news about an old generation changes nothing")
    func switchRetiresTheOldPool() {
        var tracker = MasterTracker<Int>(name: "m")
        _ = tracker.verified(a, pool: 1, epoch: 1, observed: nil)
        #expect(
            tracker.verified(b, pool: 9, epoch: 2, observed: nil).discard == 9,
            "a check that began before the first master was served changes nothing")
        let switched = tracker.verified(b, pool: 2, epoch: 2, observed: 1)
        #expect(switched.retire == [1])
        #expect(switched.switched?.from == a && switched.switched?.to == b)
        #expect(tracker.serving?.generation == 2)
        #expect(tracker.demoted(generation: 1).retire.isEmpty, "a READONLY from the old master's connection does not demote the new one")
        #expect(tracker.serving?.address == b)
        #expect(tracker.demoted(generation: 2).retire == [2])
        #expect(tracker.needsResolution)
        #expect(
            tracker.verified(a, pool: 3, epoch: 3, observed: nil).switched?.from == b,
            "a master found after a demotion is a switch from the demoted one")
    }

    @Test("an unknown name or unreachable sentinels fail the waiters at once; a failover in progress lets them wait, then says so")
    func resolutionProblems() {
        var tracker = MasterTracker<Int>(name: "m")
        _ = tracker.lease(waiter: 1)
        #expect(tracker.resolutionFailed(RedisError(.failoverInProgress, message: "x")).resume.isEmpty)
        let gaveUp = tracker.waiterGaveUp(1, wait: .seconds(5))
        #expect(gaveUp?.code == .failoverInProgress)
        #expect(gaveUp?.fromSentinel == true)
        #expect(tracker.waiterGaveUp(1, wait: .seconds(5)) == nil, "a waiter gives up once")
        _ = tracker.lease(waiter: 2)
        let unknown = tracker.resolutionFailed(RedisError(.masterUnknown, message: "unknown"))
        #expect(unknown.resume.count == 1)
        if case .failure(let error) = unknown.resume.first?.result { #expect(error.code == .masterUnknown) } else { Issue.record("fails") }
    }

    @Test("close fails the waiters and retires the master; later leases fail with clientClosed")
    func close() {
        var tracker = MasterTracker<Int>(name: "m")
        _ = tracker.verified(a, pool: 1, epoch: nil, observed: nil)
        #expect(tracker.close().retire == [1])
        guard case .fail(let error) = tracker.lease(waiter: 3) else {
            Issue.record("a closed tracker fails leases")
            return
        }
        #expect(error.code == .clientClosed)
        #expect(tracker.verified(b, pool: 4, epoch: nil, observed: nil).discard == 4)
    }

    @Test("SENTINEL MASTER replies: an address with its epoch (RESP2 and RESP3), an unknown name, garbage typed")
    func answers() {
        func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
        let flat = RESPValue.array([
            bulk("name"), bulk("m"), bulk("ip"), bulk("10.0.0.5"), bulk("port"), bulk("6380"), bulk("config-epoch"), bulk("7"),
        ])
        #expect(SentinelAnswer(.success(flat)) == .master(SentinelAddress(host: "10.0.0.5", port: 6380), epoch: 7))
        let map = RESPValue.map([RESPPair(key: bulk("ip"), value: bulk("10.0.0.5")), RESPPair(key: bulk("port"), value: bulk("6380"))])
        #expect(SentinelAnswer(.success(map)) == .master(SentinelAddress(host: "10.0.0.5", port: 6380), epoch: nil))
        #expect(SentinelAnswer(.failure(.serverReply("ERR No such master with that name"))) == .unknownMaster)
        let garbage = RESPValue.array([bulk("ip"), bulk("host"), bulk("port"), bulk("99999")])
        guard case .failed(let error) = SentinelAnswer(.success(garbage)) else {
            Issue.record("garbage is an error")
            return
        }
        #expect(error.code == .unexpectedReply && error.fromSentinel)
    }

    @Test("the newest config epoch wins over stale sentinels, however many; then the majority; problems are told apart")
    func newestAndProblems() {
        let s1 = SentinelAddress(host: "s", port: 1)
        let s2 = SentinelAddress(host: "s", port: 2)
        let s3 = SentinelAddress(host: "s", port: 3)
        #expect(SentinelAnswer.newest([(s1, .master(a, epoch: 1)), (s2, .master(a, epoch: 1)), (s3, .master(b, epoch: 2))])! == (b, 2))
        #expect(SentinelAnswer.newest([(s1, .master(a, epoch: 2)), (s2, .master(b, epoch: 2)), (s3, .master(b, epoch: 2))])!.address == b)
        #expect(SentinelAnswer.newest([(s1, .master(a, epoch: nil)), (s2, .unknownMaster)])! == (a, nil))
        #expect(SentinelAnswer.newest([(s1, .unknownMaster)]) == nil)
        let refused = RedisError.serverReply("WRONGPASS invalid username-password pair")
        let unreachable = SentinelAnswer.problem(
            [(s1, .failed(refused)), (s2, .failed(RedisError(.connectFailed, message: "refused")))], masterName: "m")
        #expect(unreachable.code == .sentinelsUnreachable)
        #expect(unreachable.message.contains("credentials"))
        #expect(SentinelAnswer.problem([(s1, .failed(refused)), (s2, .unknownMaster)], masterName: "m").code == .masterUnknown)
        #expect(
            SentinelAnswer.problem([(s1, .master(a, epoch: 1)), (s2, .unknownMaster)], masterName: "m").code == .failoverInProgress,
            "one sentinel that does not know the name does not fail the waiters while another names a master")
    }

    @Test("a master that refuses connections is kept aside: verified again it keeps its pool; replaced, its pool is retired")
    func suspect() {
        var tracker = MasterTracker<Int>(name: "m")
        _ = tracker.verified(a, pool: 1, epoch: 1, observed: nil)
        #expect(tracker.unreachable(generation: 1).retire.isEmpty, "its connections stay for now")
        guard case .wait = tracker.lease(waiter: 1) else {
            Issue.record("leases wait while it is suspect")
            return
        }
        let back = tracker.verified(a, pool: 2, epoch: 1, observed: nil)
        #expect(back.discard == 2 && back.retire.isEmpty && tracker.serving?.pool == 1, "the same master answers again: same pool")
        #expect(back.resume.count == 1)
        _ = tracker.unreachable(generation: 2)
        let replaced = tracker.verified(b, pool: 3, epoch: 2, observed: nil)
        #expect(replaced.retire == [1] && tracker.serving?.pool == 3)
        #expect(replaced.switched?.from == a && replaced.switched?.to == b)
        _ = tracker.unreachable(generation: 3)
        #expect(tracker.demoted(generation: 3).retire == [3], "READONLY from the suspect master retires it at once")
    }

    @Test("a replica's master and the served master are the same node when ports match, and hosts when both are IP addresses")
    func sameNode() {
        #expect(SentinelClient.sameNode(a, a))
        #expect(!SentinelClient.sameNode(a, b))
        #expect(!SentinelClient.sameNode(SentinelAddress(host: "10.0.0.1", port: 7001), a))
        #expect(SentinelClient.sameNode(SentinelAddress(host: "redis-master", port: 7001), a))
    }

    @Test("ROLE replies: master, a connected or disconnected replica, anything else")
    func roles() {
        #expect(NodeRole(roleReply: .array([.bulkString(ByteBuffer(string: "master")), .integer(0), .array([])])) == .master)
        let replica = RESPValue.array([
            .bulkString(ByteBuffer(string: "slave")), .bulkString(ByteBuffer(string: "127.0.0.1")), .integer(7001),
            .bulkString(ByteBuffer(string: "connected")), .integer(10),
        ])
        #expect(NodeRole(roleReply: replica) == .replica(master: a, connected: true))
        #expect(NodeRole(roleReply: .array([.bulkString(ByteBuffer(string: "sentinel"))])) == .other("sentinel"))
    }

    @Test("sentinel addresses parse with the default port 26379 and refuse credentials")
    func addresses() throws {
        #expect(try SentinelAddress(parsing: "10.1.2.3") == SentinelAddress(host: "10.1.2.3", port: 26379))
        #expect(try SentinelAddress(parsing: "[::1]:26380") == SentinelAddress(host: "::1", port: 26380))
        #expect(try SentinelAddress(parsing: "h:6379") == SentinelAddress(host: "h", port: 6379))
        #expect(throws: RedisError.self) { try SentinelAddress(parsing: "redis://h:26380/") }
        #expect(throws: RedisError.self) { try SentinelAddress(parsing: "redis://:pw@host:1") }
        #expect(throws: RedisError.self) { try SentinelAddress(parsing: "host:notaport") }
    }

    @Test("a sentinel address is coded as its host:port text, as statistics show it")
    func addressCoding() throws {
        let address = SentinelAddress(host: "::1", port: 26380)
        let json = try JSONEncoder().encode([address])
        #expect(String(decoding: json, as: UTF8.self) == #"["[::1]:26380"]"#)
        #expect(try JSONDecoder().decode([SentinelAddress].self, from: json) == [address])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([SentinelAddress].self, from: Data(#"["h:x"]"#.utf8)) }
    }
}

@Suite("ReplicaChooser: round-robin and latency-weighted replica reads (no I/O)")
struct ReplicaChooserTests {
    @Test("round-robin takes the replicas in turn")
    func roundRobin() {
        var chooser = ReplicaChooser<Int>(balancing: .roundRobin, seed: 1)
        _ = chooser.replace(with: [a, b]) { $0.port }
        let picks = (0..<6).map { _ in chooser.choose()!.address }
        #expect(Set(picks) == [a, b])
        #expect(zip(picks, picks.dropFirst()).allSatisfy { $0 != $1 })
    }

    @Test("latency: a replica 10× slower gets few reads; an unmeasured one is tried; a removed one never")
    func latency() {
        var chooser = ReplicaChooser<Int>(balancing: .latency, seed: 7)
        let c = SentinelAddress(host: "127.0.0.1", port: 7003)
        _ = chooser.replace(with: [a, b]) { $0.port }
        var counts: [SentinelAddress: Int] = [:]
        for _ in 0..<1000 {
            let (address, _) = chooser.choose()!
            counts[address, default: 0] += 1
            chooser.finished(address, after: address == a ? .milliseconds(10) : .milliseconds(1), ok: true, at: .now)
        }
        #expect(counts[a, default: 0] < 150, "the slow replica got \(counts[a, default: 0]) of 1000 reads")
        let (added, _) = chooser.replace(with: [a, b, c]) { $0.port }
        #expect(added == [7003])
        var newTried = false
        for _ in 0..<20 {
            let (address, _) = chooser.choose()!
            if address == c { newTried = true }
            chooser.finished(address, after: .milliseconds(1), ok: true, at: .now)
        }
        #expect(newTried, "an unmeasured replica costs nothing and is tried")
        #expect(chooser.remove(a) == 7001)
        #expect((0..<50).allSatisfy { _ in chooser.choose()!.address != a })
        #expect(chooser.removeAll().sorted() == [7002, 7003])
        #expect(chooser.choose() == nil)
    }
}

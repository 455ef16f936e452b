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
        guard case .wait = tracker.lease(waiter: 1) else { Issue.record("a lease waits while resolving"); return }
        let actions = tracker.verified(a, pool: 10)
        #expect(actions.resume.count == 1)
        guard case .master(let serving) = actions.resume.first?.result else { Issue.record("the waiter gets the master"); return }
        #expect(serving.address == a && serving.pool == 10 && serving.generation == 1)
        #expect(actions.switched?.from == nil && actions.switched?.to == a)
        let again = tracker.verified(a, pool: 11)
        #expect(again.discard == 11 && again.retire.isEmpty && again.switched == nil)
    }

    @Test("a switch retires the old pool and bumps the generation; news about an old generation changes nothing")
    func switchRetiresTheOldPool() {
        var tracker = MasterTracker<Int>(name: "m")
        _ = tracker.verified(a, pool: 1)
        let switched = tracker.verified(b, pool: 2)
        #expect(switched.retire == [1])
        #expect(switched.switched?.from == a && switched.switched?.to == b)
        #expect(tracker.serving?.generation == 2)
        #expect(tracker.demoted(generation: 1).retire.isEmpty, "a READONLY from the old master's connection does not demote the new one")
        #expect(tracker.serving?.address == b)
        #expect(tracker.demoted(generation: 2).retire == [2])
        #expect(tracker.needsResolution)
        #expect(tracker.verified(a, pool: 3).switched?.from == b, "a master found after a demotion is a switch from the demoted one")
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
        _ = tracker.verified(a, pool: 1)
        #expect(tracker.close().retire == [1])
        guard case .fail(let error) = tracker.lease(waiter: 3) else { Issue.record("a closed tracker fails leases"); return }
        #expect(error.code == .clientClosed)
        #expect(tracker.verified(b, pool: 4).discard == 4)
    }

    @Test("get-master-addr-by-name replies: an address, null for an unknown name, garbage typed")
    func answers() {
        let reply = RESPValue.array([.bulkString(ByteBuffer(string: "10.0.0.5")), .bulkString(ByteBuffer(string: "6380"))])
        #expect(SentinelAnswer(getMasterAddrReply: reply) == .master(SentinelAddress(host: "10.0.0.5", port: 6380)))
        #expect(SentinelAnswer(getMasterAddrReply: .null) == .unknownMaster)
        #expect(SentinelAnswer(getMasterAddrReply: .array(nil)) == .unknownMaster)
        let garbage = RESPValue.array([.bulkString(ByteBuffer(string: "host")), .bulkString(ByteBuffer(string: "99999"))])
        guard case .failed(let error) = SentinelAnswer(getMasterAddrReply: garbage) else { Issue.record("garbage is an error"); return }
        #expect(error.code == .unexpectedReply && error.fromSentinel)
    }

    @Test("the majority of answers wins over a stale sentinel; problems are told apart")
    func majorityAndProblems() {
        let s1 = SentinelAddress(host: "s", port: 1), s2 = SentinelAddress(host: "s", port: 2), s3 = SentinelAddress(host: "s", port: 3)
        #expect(SentinelAnswer.majority([(s1, .master(a)), (s2, .master(b)), (s3, .master(b))]) == b)
        #expect(SentinelAnswer.majority([(s1, .master(a)), (s2, .unknownMaster)]) == a)
        #expect(SentinelAnswer.majority([(s1, .unknownMaster)]) == nil)
        let refused = RedisError.serverReply("WRONGPASS invalid username-password pair")
        let unreachable = SentinelAnswer.problem([(s1, .failed(refused)), (s2, .failed(RedisError(.connectFailed, message: "refused")))], masterName: "m")
        #expect(unreachable.code == .sentinelsUnreachable)
        #expect(unreachable.message.contains("credentials"))
        #expect(SentinelAnswer.problem([(s1, .failed(refused)), (s2, .unknownMaster)], masterName: "m").code == .masterUnknown)
        #expect(SentinelAnswer.problem([(s1, .master(a))], masterName: "m").code == .failoverInProgress)
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
        #expect(throws: RedisError.self) { try SentinelAddress(parsing: "redis://:pw@host:1") }
        #expect(throws: RedisError.self) { try SentinelAddress(parsing: "host:notaport") }
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

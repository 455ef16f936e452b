// The Sentinel client measured on real servers (master, 2 replicas, 3 sentinels on 127.0.0.1):
// 1. Failovers under a write loop: for each, the time from `+switch-master` reaching an
//    independent subscriber to the first write acknowledged through the client, and the
//    writes that failed between the master's death and that write. Goal: median ≤ 50 ms.
// 2. GET and SET through SentinelClient vs a plain RedisPool on the same master, 8 tasks on
//    Swift's cooperative pool each, alternating rounds; the ratio is the median of the rounds'. Goal ≥ 0.97×.
// Run in release:  swift run -c release sentinel-bench [failovers] [seconds]
import BenchSupport
import ConnectionKit
import Foundation
import Logging
import NIOCore
import RESP
import Redis
import TestServers

let failovers = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 5
let seconds = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 5

let topology = try await SentinelTopology.start(masterName: "bench", replicas: 2)
defer { topology.destroy() }

var configuration = SentinelConfiguration(sentinels: topology.sentinelAddresses, masterNames: ["bench"])
configuration.poolSize = 8
configuration.dataNodes.readTimeout = .seconds(2)
var logger = Logger(label: "sentinel-bench")
logger.logLevel = .warning
let client = try SentinelClient(configuration: configuration, logger: logger)

/// When each `+switch-master` reached a subscriber of our own, apart from the client's.
let announcements = Locked<[ContinuousClock.Instant]>([])

/// What the write loop saw: when each write was acknowledged, and failures.
struct Writes: Sendable {
    var acknowledged: [ContinuousClock.Instant] = []
    var failures: [ContinuousClock.Instant] = []
}

func failoverRound(_ index: Int, writes: Locked<Writes>) async throws -> (follow: Duration, failed: Int) {
    let old = try await topology.currentMaster()
    let seen = announcements.withLock { $0.count }
    let killedAt = ContinuousClock.now
    try await old.kill()
    let deadline = ContinuousClock.now + .seconds(30)
    while announcements.withLock({ $0.count }) == seen {
        guard ContinuousClock.now < deadline else { throw TestServerError("no +switch-master within 30 s") }
        try await Task.sleep(for: .milliseconds(5))
    }
    let announced = announcements.withLock { $0[seen] }
    var firstWrite: ContinuousClock.Instant?
    while firstWrite == nil {
        guard ContinuousClock.now < deadline else { throw TestServerError("no write through the client after the switch") }
        try await Task.sleep(for: .milliseconds(5))
        firstWrite = writes.withLock { $0.acknowledged.first { $0 > announced } }
    }
    let failed = writes.withLock { $0.failures.filter { $0 > killedAt && $0 < firstWrite! }.count }
    let new = try await topology.waitForFailover(from: old)
    try await topology.restartAsReplica(old, of: new)
    try await topology.waitUntilReplicaSeen(old)
    return (announced.duration(to: firstWrite!), failed)
}

func failoverBenchmark() async throws {
    print("Failovers under a write loop (8 tasks, INCR through SentinelClient), \(failovers) in a row")
    let subscriber = try await RedisSubscriber.connect(RedisConfiguration(host: "127.0.0.1", port: topology.sentinels[2].port))
    try await subscriber.subscribe("+switch-master")
    let writes = Locked(Writes())
    let stop = Locked(false)
    var rounds: [(follow: Duration, failed: Int)] = []
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            for try await _ in subscriber.messages { announcements.withLock { $0.append(.now) } }
        }
        let master = client.master("bench")
        for _ in 0..<8 {
            group.addTask {
                while !stop.withLock({ $0 }) {
                    do {
                        try await master.increment("bench:counter")
                        let now = ContinuousClock.now
                        writes.withLock { $0.acknowledged.append(now) }
                    } catch {
                        let now = ContinuousClock.now
                        writes.withLock { $0.failures.append(now) }
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        for index in 0..<failovers {
            writes.withLock { $0.acknowledged.removeAll(keepingCapacity: true) }
            let round = try await failoverRound(index, writes: writes)
            print(
                String(
                    format: "  failover %d: first write %.1f ms after +switch-master, %d failed writes since the kill",
                    index + 1, round.follow.inSeconds * 1000, round.failed))
            rounds.append(round)
        }
        stop.withLock { $0 = true }
        await subscriber.close()
        try await group.waitForAll()
    }
    let follows = rounds.map { $0.follow.inSeconds * 1000 }.sorted()
    let failed = rounds.map(\.failed).sorted()
    printLine(
        "time to follow (ms)",
        String(
            format: "min %.1f, median %.1f, max %.1f (goal: median ≤ 50)",
            follows.first!, follows[follows.count / 2], follows.last!))
    printLine("failed writes per failover", "min \(failed.first!), median \(failed[failed.count / 2]), max \(failed.last!)")
}

let keys = (0..<10_000).map { "key:\($0)" }

func throughputBenchmark() async throws {
    let rounds = max(3, seconds)
    print("GET/SET, 8 tasks on the cooperative pool, SentinelClient vs RedisPool on the same master, \(rounds) alternating rounds")
    let address = try require(client.currentMaster("bench"))
    let pool = RedisPool(configuration: RedisConfiguration(host: address.host, port: address.port), size: 8)
    let master = client.master("bench")
    let value = ByteBuffer(string: "xxx")
    let slice = Duration.seconds(Double(seconds) / Double(rounds))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await pool.run() }
        for name in ["SET", "GET"] {
            var poolRates: [Double] = []
            var clientRates: [Double] = []
            var poolCPU = 0.0
            var clientCPU = 0.0
            for _ in 0..<rounds {
                var start = cpuTime(children: false)
                poolRates.append(
                    try await operationRate(tasks: 8, duration: slice) { random in
                        _ = try await pool.send(
                            name == "SET" ? RedisCommand("SET", keys[random % 10_000], value) : RedisCommand("GET", keys[random % 10_000]))
                    })
                poolCPU += cpuTime(children: false) - start
                start = cpuTime(children: false)
                clientRates.append(
                    try await operationRate(tasks: 8, duration: slice) { random in
                        _ = try await master.send(
                            name == "SET" ? RedisCommand("SET", keys[random % 10_000], value) : RedisCommand("GET", keys[random % 10_000]))
                    })
                clientCPU += cpuTime(children: false) - start
            }
            let ratios = zip(clientRates, poolRates).map { $0 / $1 }
            let poolRate = poolRates.reduce(0, +) / Double(rounds)
            let clientRate = clientRates.reduce(0, +) / Double(rounds)
            report(
                peer: "\(name) RedisPool", peerRate: poolRate, peerCPU: poolCPU,
                ours: "\(name) SentinelClient", ourRate: clientRate, ourCPU: clientCPU, seconds: seconds, goal: 0.97,
                ratio: (
                    ratios.sorted()[ratios.count / 2],
                    "median of rounds " + ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")
                ))
        }
        await pool.close()
        try await group.waitForAll()
    }
}

func require<T>(_ value: T?) throws -> T {
    guard let value else { throw TestServerError("no master verified") }
    return value
}

try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await client.run() }
    try await client.master("bench").set("warm", to: "up")
    try await failoverBenchmark()
    try await throughputBenchmark()
    await client.close()
    try await group.waitForAll()
}

// MemcachedClient side by side with memcaslap (libmemcached-tools) on the same two
// memcached servers, in one run, alternating rounds of one second each:
//   8 tasks, 90% get / 10% set, 32-byte values, 10,000 keys  vs  memcaslap -T 1 -c 8 -X 32 (its default mix)
// Ours four ways: a connection borrowed from the pool per call (sharedConnectionsPerServer = nil), or
// one shared pipelined connection per server (the default); each with the tasks on Swift's cooperative pool (the way
// users call it by default) and preferring the client's event-loop executor. memcaslap is one C thread.
// Then get many of 100 keys (8 tasks), and the cost of a call that a HealingMemcachedClient
// short-circuits while its server is down (SIGSTOPped), as p50/p99 over 20,000 calls.
// Run in release:  swift run -c release memcached-bench [seconds]
import BenchSupport
import ConnectionKit
import Foundation
import Memcached
import NIOCore
import TestServers

let seconds = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 5
/// "cooperative", "executor" or "shared": run that variant of the mix only (and nothing else), e.g. under a profiler.
let onlyVariant = CommandLine.arguments.dropFirst(2).first

let servers = [try await MemcachedServer.start(name: "bench-1"), try await MemcachedServer.start(name: "bench-2")]
defer {
    for server in servers {
        server.resume()
        server.destroy()
    }
}
let configuration = MemcachedClientConfiguration(servers: servers.map { MemcachedServerConfiguration(port: $0.port) })
let keys = (0..<10_000).map { "bench:key:\($0)" }
let value = ByteBuffer(repeating: 0x78, count: 32)

/// memcaslap's rate for one `duration` run with 8 connections in one thread.
func peerRate(duration: Int, extra: [String] = []) async throws -> Double {
    let output = try await Commands.run(
        "/usr/bin/memcaslap",
        ["-s", servers.map(\.address).joined(separator: ","), "-T", "1", "-c", "8", "-X", "32", "-t", "\(duration)s"] + extra
    ).output
    guard let rate = number(after: "TPS:", in: output) else { throw TestServerError("could not read memcaslap's rate:\n\(output)") }
    return rate
}

/// One way of running the 9:1 mix from 8 tasks: through which client, on which executor.
struct Variant {
    var name: String
    var executor: (any TaskExecutor)?
    var client: MemcachedClient
}

func mixedRate(_ variant: Variant, duration: Duration) async throws -> Double {
    let client = variant.client
    return try await operationRate(tasks: 8, duration: duration, executor: variant.executor) { random in
        let key = keys[random % keys.count]
        if random % 10 == 0 {
            try await client.set(key, to: value)
        } else {
            _ = try await client.get(key)
        }
    }
}

/// memcaslap and each variant in turn, one second each, for `rounds` rounds; per variant the median
/// of its rounds' ratios to the memcaslap round just before.
func compareMixed(_ variants: [Variant]) async throws {
    let rounds = max(3, seconds)
    print("get/set 9:1, 32-byte values, 8 connections, 2 servers, \(rounds) alternating rounds of 1 s")
    var peerRates: [Double] = []
    var peerCPU = 0.0
    var ourRates = Array(repeating: [Double](), count: variants.count)
    var ourCPU = Array(repeating: 0.0, count: variants.count)
    for _ in 0..<rounds {
        let start = cpuTime(children: true)
        peerRates.append(try await peerRate(duration: 1))
        peerCPU += cpuTime(children: true) - start
        for (index, variant) in variants.enumerated() {
            let start = cpuTime(children: false)
            ourRates[index].append(try await mixedRate(variant, duration: .seconds(1)))
            ourCPU[index] += cpuTime(children: false) - start
        }
    }
    for (index, variant) in variants.enumerated() {
        let ratios = zip(ourRates[index], peerRates).map { $0 / $1 }
        report(
            peer: "memcaslap -T 1 -c 8 -X 32", peerRate: peerRates.reduce(0, +) / Double(rounds), peerCPU: peerCPU,
            ours: variant.name, ourRate: ourRates[index].reduce(0, +) / Double(rounds), ourCPU: ourCPU[index], seconds: rounds, goal: 1.0,
            ratio: (
                ratios.sorted()[ratios.count / 2], "median of rounds " + ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            ))
    }
}

func getMany(_ client: MemcachedClient) async throws {
    let batches = (0..<100).map { batch in (0..<100).map { keys[(batch * 100 + $0) % keys.count] } }
    let start = cpuTime(children: false)
    let rate = try await operationRate(tasks: 8, duration: .seconds(Double(seconds) / 2)) { random in
        let found = await client.getMany(batches[random % batches.count])
        precondition(found.failures.isEmpty)
    }
    let cpu = cpuTime(children: false) - start
    print("get many, 100 keys a call (over both servers), 8 tasks")
    printLine(
        "MemcachedClient.getMany",
        String(
            format: "%10.0f calls/s (%.0f keys/s)   %6.1f µs client CPU per call",
            rate, rate * 100, cpu / (rate * Double(seconds) / 2) * 1e6))
}

func shortCircuit() async throws {
    var healing = HealingConfiguration()
    healing.probeBackoff = BackoffPolicy(initial: .seconds(60), maximum: .seconds(60))  // no probe during the measurement
    var settings = configuration
    settings.servers = settings.servers.map { server in
        var server = server
        server.readTimeout = .milliseconds(100)
        return server
    }
    let healingClient = HealingMemcachedClient(configuration: settings, healing: healing)
    let key = (0...).lazy.map { "sc:\($0)" }.first { healingClient.client.serverIndex(for: $0) == 1 }!
    await servers[1].pause()
    while healingClient.isAvailable(server: 1) { _ = try? await healingClient.get(key) }
    var durations: [Duration] = []
    durations.reserveCapacity(20_000)
    let start = cpuTime(children: false)
    for _ in 0..<20_000 {
        let started = ContinuousClock.now
        _ = try await healingClient.get(key)
        durations.append(started.duration(to: .now))
    }
    let cpu = cpuTime(children: false) - start
    servers[1].resume()
    await healingClient.close()
    durations.sort()
    func micro(_ duration: Duration) -> String { String(format: "%.1f µs", duration.inSeconds * 1e6) }
    print("a get while its server is down (SIGSTOPped), HealingMemcachedClient, 20,000 calls")
    printLine(
        "short-circuited get",
        "p50 \(micro(durations[10_000])), p99 \(micro(durations[19_800])), max \(micro(durations.last!)), "
            + String(format: "%.1f µs CPU per call (goal: p99 ≤ 50 µs)", cpu / 20_000 * 1e6))
}

// Pool against shared connections: a client borrowing a connection per call, and one (the default)
// with one pipelined connection per server that all tasks share.
var pooledConfiguration = configuration
pooledConfiguration.sharedConnectionsPerServer = nil
let client = MemcachedClient(configuration: pooledConfiguration)
for key in keys { try await client.set(key, to: value) }
let sharedClient = MemcachedClient(configuration: configuration)
let variants = [
    ("cooperative", Variant(name: "pooled, 8 tasks, cooperative pool", executor: nil, client: client)),
    ("executor", Variant(name: "pooled, 8 tasks on its executor", executor: client.taskExecutor, client: client)),
    ("shared-cooperative", Variant(name: "shared, 8 tasks, cooperative pool", executor: nil, client: sharedClient)),
    ("shared", Variant(name: "shared, 8 tasks on its executor", executor: sharedClient.taskExecutor, client: sharedClient)),
]
if let onlyVariant {
    guard let variant = variants.first(where: { $0.0 == onlyVariant })?.1 else { fatalError("no variant \(onlyVariant)") }
    let rate = try await mixedRate(variant, duration: .seconds(seconds))
    print("\(variant.name): \(Int(rate))/s")
} else {
    try await compareMixed(variants.map(\.1))
}
await sharedClient.close()
try await getMany(client)
await client.close()
try await shortCircuit()

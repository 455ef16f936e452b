// GET and SET through RedisPool, side by side in one run with redis-benchmark
// on the same redis-server (3-byte values, 100,000 random keys for both):
//   8 tasks on a pool of 8             vs  redis-benchmark -c 8 -t set,get
//   128 tasks on an auto-pipelined pool vs  redis-benchmark -c 8 -P 16 -t set,get  (128 commands in flight each)
// Our tasks prefer the pool's executor (they run on its event loop, as redis-benchmark runs on one
// thread); with "cooperative" they run on Swift's cooperative pool and every command crosses threads.
// Each side runs `seconds` per test in all, in one alternating round per second (at least 3); the ratio is the median of the rounds'.
// With "tls" as the fourth argument, the server speaks only TLS (a throw-away authority, a client
// certificate required) and both sides connect over TLS (redis-benchmark --tls).
// Run in release:  swift run -c release redis-bench [seconds] [plain|pipelined|both] [loop|cooperative] [tls]
import BenchSupport
import ConnectionKit
import Foundation
import NIOClientSupport
import NIOCore
import NIOPosix
import Redis
import TestServers

let seconds = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 5
let only = CommandLine.arguments.dropFirst(2).first  // "plain" or "pipelined": one half only
let onLoop = CommandLine.arguments.dropFirst(3).first != "cooperative"
let overTLS = CommandLine.arguments.dropFirst(4).first == "tls"
let certificates = overTLS ? try await TestCertificates.make(name: "bench") : nil

/// redis-benchmark's TLS arguments (the authority and the client certificate), when the run is over TLS.
let peerTLS = certificates.map { ["--tls", "--cacert", $0.authority, "--cert", $0.clientCertificate, "--key", $0.clientKey] } ?? []

/// Runs redis-benchmark and returns its requests per second for SET and GET.
func peer(port: Int, pipeline: Int, requests: Int) async throws -> [String: Double] {
    let output = try await Commands.run(
        "/usr/bin/redis-benchmark",
        [
            "-h", "127.0.0.1", "-p", String(port), "-c", "8", "-P", String(pipeline), "-r", "100000", "-n", String(requests),
            "-t", "set,get", "--csv",
        ] + peerTLS
    ).output
    var rates: [String: Double] = [:]
    for line in output.split(separator: "\n") {
        let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        if fields.count > 1, let rate = Double(fields[1]) { rates[fields[0]] = rate }
    }
    guard rates["SET"] != nil, rates["GET"] != nil else { throw TestServerError("could not read redis-benchmark's rates:\n\(output)") }
    return rates
}

/// Commands per second from `tasks` tasks sending `command` one after another for `duration`.
func ours(_ pool: RedisPool, tasks: Int, duration: Duration, command: @escaping @Sendable (Int) -> RedisCommand) async throws -> Double {
    try await operationRate(tasks: tasks, duration: duration, executor: onLoop ? pool.taskExecutor : nil) { random in
        _ = try await pool.send(command(random % 100_000))
    }
}

/// The key names, made once: redis-benchmark too rewrites the digits of a key in place
/// rather than formatting a new string per command, and formatting is not what is measured.
let keys = (0..<100_000).map { "key:\($0)" }

/// The two sides in alternating rounds (this machine's speed drifts by tens of
/// percent within a minute): each round runs redis-benchmark (SET then GET),
/// then our SET and GET. Prints each side's mean rate and CPU per command, and
/// the median of the rounds' ratios, which one slow phase cannot move.
func compare(_ title: String, pool: RedisPool, tasks: Int, pipeline: Int, goal: Double, port: Int) async throws {
    let rounds = max(3, seconds)
    print(title + ", \(rounds) alternating rounds")
    let value = ByteBuffer(string: "xxx")
    let slice = Duration.seconds(Double(seconds) / Double(rounds))
    let requests = (pipeline == 1 ? 40_000 : 250_000) * seconds / rounds
    let names = ["SET", "GET"]
    var peerRates: [String: [Double]] = [:]
    var ourRates: [String: [Double]] = [:]
    var ourCPU: [String: Double] = [:]
    var peerCPU = 0.0
    for _ in 0..<rounds {
        let peerStart = cpuTime(children: true)
        let rates = try await peer(port: port, pipeline: pipeline, requests: requests)
        peerCPU += cpuTime(children: true) - peerStart
        for name in names {
            peerRates[name, default: []].append(rates[name]!)
            let ourStart = cpuTime(children: false)
            let rate = try await ours(pool, tasks: tasks, duration: slice) { key in
                name == "SET" ? RedisCommand("SET", keys[key], value) : RedisCommand("GET", keys[key])
            }
            ourCPU[name, default: 0] += cpuTime(children: false) - ourStart
            ourRates[name, default: []].append(rate)
        }
    }
    for name in names {
        let peerRate = peerRates[name]!.reduce(0, +) / Double(rounds)
        let ourRate = ourRates[name]!.reduce(0, +) / Double(rounds)
        // redis-benchmark ran both tests in one process: half its CPU is this test's,
        // scaled here to what `report` divides by (rate × seconds).
        let peerShare = peerCPU / 2 / Double(requests * rounds) * peerRate * Double(seconds)
        report(
            peer: "\(name) redis-benchmark -c 8 -P \(pipeline)", peerRate: peerRate, peerCPU: peerShare,
            ours: "\(name) RedisPool, \(tasks) tasks\(onLoop ? " on its loop" : "")", ourRate: ourRate,
            ourCPU: ourCPU[name]!, seconds: seconds, goal: goal, ratio: medianRatio(ourRates[name]!, peerRates[name]!))
    }
}

/// The median of the per-round ratios `ours[i] / peer[i]`, with the rounds' ratios listed.
func medianRatio(_ ours: [Double], _ peer: [Double]) -> (median: Double, detail: String) {
    let ratios = zip(ours, peer).map { $0 / $1 }
    return (ratios.sorted()[ratios.count / 2], "median of rounds " + ratios.map { String(format: "%.2f", $0) }.joined(separator: ", "))
}

if ProcessInfo.processInfo.environment["NIO_EXECUTOR"] != nil {
    precondition(NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor())
}
let server = try await RedisServer.start(
    name: "bench", tls: certificates.map { ServerTLS(certificates: $0, requireClientCertificate: true) })
defer { server.destroy() }
var configuration = RedisConfiguration(port: server.port)
configuration.tls = certificates.map {
    ClientTLS(trustRootsFile: $0.authority, certificateFile: $0.clientCertificate, privateKeyFile: $0.clientKey)
}
if overTLS { print("over TLS (both sides verify the server and send a client certificate)") }

let plain = RedisPool(configuration: configuration, size: 8)
var pipelinedOptions = RedisPoolOptions()
pipelinedOptions.autoPipelining = AutoPipelining()  // the default: 2 shared connections
let pipelined = RedisPool(configuration: configuration, size: 4, options: pipelinedOptions)
try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await plain.run() }
    group.addTask { try await pipelined.run() }
    if only != "pipelined" {
        try await compare(
            "GET/SET, 8 connections, one command at a time, \(seconds) s each, same server, same run",
            pool: plain, tasks: 8, pipeline: 1, goal: 1.0, port: server.port)
    }
    if only != "plain" {
        try await compare(
            "GET/SET, 128 commands in flight (automatic pipelining over the default 2 connections), \(seconds) s each",
            pool: pipelined, tasks: 128, pipeline: 16, goal: 0.8, port: server.port)
    }
    await plain.close()
    await pipelined.close()
    try await group.waitForAll()
}

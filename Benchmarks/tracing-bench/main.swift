// What tracing costs on the hot paths, in one run against one server each, alternating rounds:
// tracing off, the no-op tracer, and an in-memory tracer (InMemoryTracing, spans kept and
// cleared after each round; each round starts with the next variant, after one warm-up round),
// each ratio the median over the rounds of (variant / off):
//   PostgreSQL point selects through `Database` (4 tasks on the cooperative pool, pgbench's table);
//   Redis GET through `RedisPool` (8 tasks on a pool of 8, on the cooperative pool).
// Goal: the no-op tracer at >= 0.98x of off.
// Run in release:  swift run -c release tracing-bench [seconds per round] [rounds]
import BenchSupport
import ConnectionKit
import Foundation
import InMemoryTracing
import PostgresBackend
import Redis
import SQLCore
import TestServers
import Tracing

let seconds = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 3
let rounds = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 5

/// One variant's rates and client CPU seconds over the rounds.
struct Variant {
    let name: String
    let tracing: TracingConfiguration
    let recorder: InMemoryTracer?
    var rates: [Double] = []
    var cpu: [Double] = []
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func makeVariants() -> [Variant] {
    let recorder = InMemoryTracer()
    return [
        Variant(name: "tracing off", tracing: .disabled, recorder: nil),
        Variant(name: "no-op tracer", tracing: TracingConfiguration(tracer: NoOpTracer()), recorder: nil),
        Variant(name: "in-memory tracer", tracing: TracingConfiguration(tracer: recorder), recorder: recorder),
    ]
}

/// Runs each variant once per round, in turn, and prints rates, CPU per operation and ratios to off.
func compare(_ title: String, _ run: (TracingConfiguration) async throws -> Double) async throws {
    print("\(title): \(rounds) alternating rounds of \(seconds) s per variant")
    var variants = makeVariants()
    _ = try await run(.disabled)  // a warm-up round, not counted
    for round in 0..<rounds {
        // Each round starts with the next variant, so that no variant always runs first or last.
        for step in variants.indices {
            let index = (round + step) % variants.count
            let started = cpuTime(children: false)
            variants[index].rates.append(try await run(variants[index].tracing))
            variants[index].cpu.append(cpuTime(children: false) - started)
            variants[index].recorder?.clearAll()
        }
    }
    let off = variants[0].rates
    for variant in variants {
        let perOperation = zip(variant.cpu, variant.rates).map { $0 / ($1 * Double(seconds)) * 1e6 }
        let ratios = zip(variant.rates, off).map { $0 / $1 }
        printLine(
            variant.name,
            String(
                format: "%9.0f /s  %6.2f µs client CPU per op  ratio %.3fx (rounds %@)", median(variant.rates), median(perOperation),
                median(ratios), ratios.map { String(format: "%.3f", $0) }.joined(separator: ", ")))
    }
}

let postgres = try await PostgresCluster.start(standbys: 0, maxConnections: 50)
defer { postgres.destroy() }
try await Commands.run(
    "/usr/lib/postgresql/15/bin/pgbench",
    ["-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", String(postgres.primary.port), "-U", "postgres", "postgres"])
try await compare("PostgreSQL point selects, 4 tasks") { tracing in
    try await pointSelects(
        driver: PostgresDriver(tracing: tracing), dsn: postgres.primary.dsn, sql: "SELECT abalance FROM pgbench_accounts WHERE aid = ?",
        keys: 1...100_000, tasks: 4, duration: .seconds(seconds))
}

let redis = try await RedisServer.start(name: "tracing-bench")
defer { redis.destroy() }
let keys = (0..<100_000).map { "key:\($0)" }
let seed = RedisPool(configuration: RedisConfiguration(host: "127.0.0.1", port: redis.port), size: 1)
for index in stride(from: 0, to: keys.count, by: 1000) {
    _ = try await seed.withConnection { connection in
        await connection.pipeline(keys[index..<min(index + 1000, keys.count)].map { RedisCommand("SET", $0, "xxx") })
    }
}
await seed.close()
try await compare("Redis GET, 8 tasks on a pool of 8") { tracing in
    var configuration = RedisConfiguration(host: "127.0.0.1", port: redis.port)
    configuration.tracing = tracing
    let pool = RedisPool(configuration: configuration, size: 8)
    let rate = try await operationRate(tasks: 8, duration: .seconds(seconds)) { random in
        _ = try await pool.send(RedisCommand("GET", keys[random % keys.count]))
    }
    await pool.close()
    return rate
}

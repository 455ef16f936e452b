// Measures ConnectionKit's pool: borrow+return cost uncontended, and
// throughput with 64 tasks contending for 8 connections. Run in release:
//   swift run -c release connectionkit-bench
import ConnectionKit
import Foundation

/// A connection with nothing behind it: the benchmark measures the pool alone.
final class Token: Sendable {}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func makePool(idle: Int, maxOpen: Int?) -> ConnectionPool<Token, ContinuousClock, Never> {
    var config = ConnectionPoolConfiguration(name: "bench", idleSize: idle)
    config.maxOpen = maxOpen
    config.pingInterval = .disabled
    return ConnectionPool(configuration: config, lifecycle: ConnectionLifecycle(dial: { Token() }, close: { _ in }))
}

func uncontended(iterations: Int) async throws {
    let pool = makePool(idle: 1, maxOpen: 1)
    for _ in 0..<10_000 { await pool.release(try await pool.borrow()) }  // warm up
    let wall = ContinuousClock.now
    let cpu = cpuSeconds()
    for _ in 0..<iterations {
        let lease = try await pool.borrow()
        await pool.release(lease)
    }
    let wallNs = (ContinuousClock.now - wall).nanoseconds / Double(iterations)
    let cpuNs = (cpuSeconds() - cpu) * 1e9 / Double(iterations)
    print(
        String(
            format: "uncontended borrow+release: %.0f ns wall, %.0f ns CPU per pair (%d pairs; goal <= 1000 ns)", wallNs, cpuNs, iterations)
    )
    await pool.close()
}

func contended(tasks: Int, connections: Int, perTask: Int) async throws {
    let pool = makePool(idle: connections, maxOpen: connections)
    try await withThrowingTaskGroup(of: Void.self) { service in
        service.addTask { try await pool.run() }
        while !pool.isRunning { await Task.yield() }
        let wall = ContinuousClock.now
        let cpu = cpuSeconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    for _ in 0..<perTask {
                        try await pool.withConnection { _ in await Task.yield() }
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - wall).nanoseconds / 1e9
        let total = Double(tasks * perTask)
        let stats = pool.statistics
        print(
            String(
                format: "%d tasks on %d connections: %.0f borrows/s, %.0f ns CPU per borrow, %d waits, mean wait %.1f µs, %d opened",
                tasks, connections, total / seconds, (cpuSeconds() - cpu) * 1e9 / total, stats.waitCount,
                stats.waitCount > 0 ? stats.waitDuration.nanoseconds / Double(stats.waitCount) / 1000 : 0, stats.opened))
        await pool.close()
        try await service.waitForAll()
    }
}

extension Duration {
    var nanoseconds: Double { Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9 }
}

let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 2_000_000
try await uncontended(iterations: iterations)
try await contended(tasks: 64, connections: 8, perTask: max(1, iterations / 200))

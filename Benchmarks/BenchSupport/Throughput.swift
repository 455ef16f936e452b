// Shared by the benchmark executables (sql-bench, cluster-bench).
import Foundation
import SQLCore

/// Point selects per second through a pooled `Database` of `tasks`
/// connections, each task querying one random key after another for `duration`;
/// `onExecutor`: the tasks prefer the driver's `SQLDriver.taskExecutor`
/// instead of running on Swift's cooperative pool.
public func pointSelects(
    driver: any SQLDriver, dsn: String, sql: String, keys: ClosedRange<Int64>, tasks: Int, duration: Duration, onExecutor: Bool = false
) async throws -> Double {
    var config = DatabaseConfiguration(name: "bench")
    config.maxOpen = tasks
    config.maxIdle = tasks
    let db = Database(driver: driver, dsn: dsn, configuration: config)
    return try await withThrowingTaskGroup(of: Int.self) { group in
        group.addTask {
            try await db.run()
            return 0
        }
        while !db.isRunning { await Task.yield() }
        let deadline = ContinuousClock.now + duration
        let started = ContinuousClock.now
        for _ in 0..<tasks {
            group.addTask(executorPreference: onExecutor ? db.taskExecutor : nil) {
                var count = 0
                // A cheap generator, as pgbench and sysbench use: the system one costs a getrandom(2) per key.
                var state = UInt64.random(in: 1...UInt64.max)
                let span = UInt64(keys.upperBound - keys.lowerBound + 1)
                while ContinuousClock.now < deadline {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let key = keys.lowerBound + Int64((state >> 33) % span)
                    let rows = try await db.query(sql, [.integer(key)])
                    precondition(rows.count == 1)
                    count += 1
                }
                return count
            }
        }
        var total = 0
        for _ in 0..<tasks { total += try await group.next() ?? 0 }
        let elapsed = ContinuousClock.now - started
        await db.close()
        try await group.waitForAll()
        return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}

/// Prints one side-by-side pair, each with its client CPU per query, and the ratio with its goal
/// (`ratio`, when given, replaces the ratio of the two rates: a median over rounds, say).
public func report(
    peer: String, peerRate: Double, peerCPU: Double, ours: String, ourRate: Double, ourCPU: Double, seconds: Int, goal: Double = 0.95,
    ratio: (median: Double, detail: String)? = nil
) {
    func line(_ label: String, _ value: String) { printLine(label, value) }
    line(peer, String(format: "%10.0f /s   ", peerRate) + cpuPerQuery(peerCPU, rate: peerRate, seconds: seconds))
    line(ours, String(format: "%10.0f /s   ", ourRate) + cpuPerQuery(ourCPU, rate: ourRate, seconds: seconds))
    if let ratio {
        line("ratio", String(format: "%10.2fx (goal >= %.2fx; ", ratio.median, goal) + ratio.detail + ")")
    } else {
        line("ratio", String(format: "%10.2fx (goal >= %.2fx)", ourRate / peerRate, goal))
    }
}

/// The number after `marker` on the first line holding it, as in `tps = 25071.3` or `(18311.25 per sec.)`.
public func number(after marker: String, in output: String) -> Double? {
    guard let line = output.split(separator: "\n").first(where: { $0.contains(marker) }),
        let range = line.range(of: marker)
    else { return nil }
    let rest = line[range.upperBound...].drop(while: { $0 == " " || $0 == "(" || $0 == "=" })
    return Double(rest.prefix(while: { $0.isNumber || $0 == "." }))
}

/// CPU time (user + system) used so far by this process, or by its reaped children.
public func cpuTime(children: Bool) -> Double {
    var usage = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Client CPU per query, in microseconds, for a side that ran `rate` queries/s for `seconds`.
public func cpuPerQuery(_ cpu: Double, rate: Double, seconds: Int) -> String {
    String(format: "%6.1f µs client CPU per query", cpu / (rate * Double(seconds)) * 1e6)
}

/// One aligned "  label   value" line of a benchmark report.
public func printLine(_ label: String, _ value: String) {
    print("  " + label.padding(toLength: 36, withPad: " ", startingAt: 0) + value)
}

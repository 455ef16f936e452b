import Foundation
import SQLCore

/// Point selects per second through a pooled ``Database`` of `tasks`
/// connections, each task querying one random key after another for `duration`.
func pointSelects(
    driver: any SQLDriver, dsn: String, sql: String, keys: ClosedRange<Int64>, tasks: Int, duration: Duration
) async throws -> Double {
    var config = DatabaseConfiguration(name: "bench")
    config.maxOpen = tasks
    config.maxIdle = tasks
    let db = Database(driver: driver, dsn: dsn, configuration: config)
    return try await withThrowingTaskGroup(of: Int.self) { group in
        group.addTask { try await db.run(); return 0 }
        while !db.isRunning { await Task.yield() }
        let deadline = ContinuousClock.now + duration
        let started = ContinuousClock.now
        for _ in 0..<tasks {
            group.addTask {
                var count = 0
                var random = SystemRandomNumberGenerator()
                while ContinuousClock.now < deadline {
                    let rows = try await db.query(sql, [.integer(Int64.random(in: keys, using: &random))])
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

/// Prints one side-by-side pair and its ratio.
func report(peer: String, peerRate: Double, ours: String, ourRate: Double) {
    func line(_ label: String, _ value: String) { print("  " + label.padding(toLength: 36, withPad: " ", startingAt: 0) + value) }
    line(peer, String(format: "%10.0f /s", peerRate))
    line(ours, String(format: "%10.0f /s", ourRate))
    line("ratio", String(format: "%10.2fx (goal >= 0.95x)", ourRate / peerRate))
}

/// The number after `marker` on the first line holding it, as in `tps = 25071.3` or `(18311.25 per sec.)`.
func number(after marker: String, in output: String) -> Double? {
    guard let line = output.split(separator: "\n").first(where: { $0.contains(marker) }),
          let range = line.range(of: marker) else { return nil }
    let rest = line[range.upperBound...].drop(while: { $0 == " " || $0 == "(" || $0 == "=" })
    return Double(rest.prefix(while: { $0.isNumber || $0 == "." }))
}

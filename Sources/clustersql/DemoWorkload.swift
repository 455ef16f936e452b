import ClusterSQL
import ConnectionKit
import Foundation
import SQLCore

/// The demo's workload: `tasks` tasks share `operations` statements, nine
/// point reads to one idempotent write, through a pool over the cluster;
/// `halfway` runs once half of them are done.
struct DemoWorkload: Sendable {
    /// Rows in `demo_orders` on every node.
    static let orders = 1_000

    let cluster: DemoCluster
    let operations: Int
    let tasks: Int
    let halfway: @Sendable () -> Void

    /// What the workload saw.
    struct Outcome: Sendable {
        /// Statements per node during each phase.
        var firstPhase: [String: Int] = [:]
        var secondPhase: [String: Int] = [:]
        var firstSeconds = 0.0
        var secondSeconds = 0.0
        /// Failed statements per error code.
        var failures: [String: Int] = [:]
    }

    private struct Shared {
        var started = 0
        var done = 0
        var failures: [String: Int] = [:]
    }

    func run() async throws -> Outcome {
        var poolConfiguration = DatabaseConfiguration(name: "demo")
        poolConfiguration.maxOpen = tasks
        poolConfiguration.maxIdle = tasks
        // Short-lived pooled connections, so that a ten-second demo shows the
        // rebalancing a real pool does over the cluster's 60 s lifetime.
        poolConfiguration.maxLifetime = .milliseconds(200)
        let database = Database(driver: cluster.cluster, dsn: "", configuration: poolConfiguration)
        let shared = Locked(Shared())
        let progress = DemoProgress(total: operations)
        let clock = ContinuousClock()
        var outcome = Outcome()
        let begin = clock.now
        var switched = begin
        var atSwitch: [String: Int] = [:]
        try await withThrowingTaskGroup(of: Void.self) { background in
            background.addTask { try await cluster.cluster.run() }
            background.addTask { try await database.run() }
            try await withThrowingTaskGroup(of: Void.self) { workers in
                for _ in 0..<tasks {
                    workers.addTask { await work(database: database, shared: shared) }
                }
                // Watch the progress; flip the faults at half-way.
                var flipped = false
                while true {
                    let (done, failed) = shared.withLock { ($0.done, $0.failures.values.reduce(0, +)) }
                    if !flipped && done >= operations / 2 {
                        atSwitch = statementsPerNode()
                        switched = clock.now
                        halfway()
                        flipped = true
                    }
                    progress.show(done: done, failed: failed, phase: flipped ? 2 : 1, elapsed: (clock.now - begin).inSeconds)
                    if done >= operations { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await workers.waitForAll()
            }
            progress.finish()
            await database.close()
            background.cancelAll()
        }
        let end = statementsPerNode()
        outcome.firstPhase = atSwitch
        outcome.secondPhase = Dictionary(uniqueKeysWithValues: end.map { ($0.key, $0.value - (atSwitch[$0.key] ?? 0)) })
        outcome.firstSeconds = (switched - begin).inSeconds
        outcome.secondSeconds = (clock.now - switched).inSeconds
        outcome.failures = shared.withLock { $0.failures }
        return outcome
    }

    private func statementsPerNode() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: cluster.cluster.statistics().nodes.map { ($0.name, $0.statements) })
    }

    /// One task: claims statements until all are claimed.
    private func work(database: Database, shared: Locked<Shared>) async {
        let insert = cluster.idempotentEventInsert
        while let index = shared.withLock({ state -> Int? in
            guard state.started < operations else { return nil }
            state.started += 1
            return state.started
        }) {
            let order = Int64(index * 7919 % Self.orders + 1)
            do {
                if index % 10 == 0 {
                    _ = try await ClusterDriver.idempotent {
                        try await database.execute(insert, [.integer(Int64(index)), .integer(order)])
                    }
                } else {
                    // A point read is safe to run twice: marked so, it moves to another node after a lost reply.
                    _ = try await ClusterDriver.idempotent {
                        try await database.query("SELECT customer, amount FROM demo_orders WHERE id = ?", [.integer(order)])
                    }
                }
                shared.withLock { $0.done += 1 }
            } catch {
                let code = (error as? SQLError)?.code.description ?? "\(type(of: error))"
                shared.withLock {
                    $0.done += 1
                    $0.failures[code, default: 0] += 1
                }
            }
        }
    }
}

/// The progress line on standard error, redrawn in place.
struct DemoProgress: Sendable {
    let total: Int

    func show(done: Int, failed: Int, phase: Int, elapsed: Double) {
        let percent = done * 100 / max(total, 1)
        let rate = elapsed > 0 ? Int(Double(done) / elapsed) : 0
        let line =
            "\r[\(String(repeating: " ", count: 3 - String(percent).count))\(percent)%] \(done)/\(total) statements, "
            + "\(rate)/s, \(failed) failed, phase \(phase)"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}

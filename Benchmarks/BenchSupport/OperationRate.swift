import ConnectionKit

/// Operations per second from `tasks` tasks each calling `operation` one after
/// another for `duration` (the clock read once per 16 calls). `operation` gets a
/// fresh random number per call from a cheap per-task generator (the system one
/// makes a getrandom(2) call each time, which is not what is measured).
/// `executor`: the task executor the tasks prefer, `nil` for Swift's cooperative pool.
public func operationRate(
    tasks: Int, duration: Duration, executor: (any TaskExecutor)? = nil, _ operation: @escaping @Sendable (Int) async throws -> Void
) async throws -> Double {
    try await withThrowingTaskGroup(of: Int.self) { group in
        let started = ContinuousClock.now
        let deadline = started + duration
        for _ in 0..<tasks {
            group.addTask(executorPreference: executor) {
                var count = 0
                var state = UInt64.random(in: 1...UInt64.max)
                while ContinuousClock.now < deadline {
                    for _ in 0..<16 {
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        try await operation(Int(state >> 33))
                    }
                    count += 16
                }
                return count
            }
        }
        var total = 0
        for try await count in group { total += count }
        return Double(total) / (ContinuousClock.now - started).inSeconds
    }
}

/// A server (or cluster) started once per test process, on first use, however
/// many suites ask for it at the same time; a failed start is reported to each.
actor StartedOnce<Value: Sendable> {
    private let start: @Sendable () async throws -> Value
    private var starting: Task<Value, any Error>?

    init(_ start: @escaping @Sendable () async throws -> Value) {
        self.start = start
    }

    func value() async throws -> Value {
        if let starting { return try await starting.value }
        let task = Task { try await start() }
        starting = task
        return try await task.value
    }
}

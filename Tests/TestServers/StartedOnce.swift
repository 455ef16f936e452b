/// A server (or cluster) started once per test process, on first use, however
/// many suites ask for it at the same time; a failed start is reported to each.
public actor StartedOnce<Value: Sendable> {
    private let start: @Sendable () async throws -> Value
    private var starting: Task<Value, any Error>?

    /// Remembers how to start the value; nothing starts before the first ``value()``.
    public init(_ start: @escaping @Sendable () async throws -> Value) {
        self.start = start
    }

    /// The value, started by the first caller; later callers wait for the same start.
    public func value() async throws -> Value {
        if let starting { return try await starting.value }
        let task = Task { try await start() }
        starting = task
        return try await task.value
    }
}

/// A deadline for all the SQL work of a task, as Go's contexts carry one: every
/// statement, pool wait and open inside ``withTimeout(_:_:)`` or
/// ``withDeadline(_:_:)`` (in this task and the child tasks it starts) ends by it.
///
/// ```swift
/// try await SQLDeadline.withTimeout(.seconds(2)) {
///     let user = try await db.query("SELECT … WHERE id = ?", [.integer(id)])
///     try await db.withTransaction { tx in … }
/// }
/// ```
///
/// When the deadline passes during a statement, the statement is cancelled on
/// the server (PostgreSQL's cancel request, MariaDB's `KILL QUERY`, SQLite's
/// interrupt) and fails with ``SQLError/Code/timeout``; a pool wait or an open
/// that reaches it fails with the same code. Nested scopes keep the earlier
/// deadline. A ``Database`` call's `timeout:` (or its configuration's
/// ``DatabaseConfiguration/defaultTimeout``) opens such a scope around the call.
///
/// The deadline is a task-local value: child tasks and unstructured `Task { }`s started
/// inside the scope carry it too (a detached task does not). Two waits it does not cut
/// short: SQLite's `busy_timeout` inside the C library, and a statement's turn on a
/// connection that another statement of the same caller is using (a connection runs one
/// statement at a time); a statement that gets its turn after the deadline is not sent.
public enum SQLDeadline {
    @TaskLocal static var instant: ContinuousClock.Instant?

    /// The deadline in force for the current task, if any.
    public static var current: ContinuousClock.Instant? { instant }

    /// Runs `body` with `deadline` in force (or the one already in force, if earlier).
    public static func withDeadline<T>(
        _ deadline: ContinuousClock.Instant, _ body: () async throws -> T
    ) async rethrows -> T {
        let effective = instant.map { min($0, deadline) } ?? deadline
        return try await $instant.withValue(effective) { try await body() }
    }

    /// Runs `body` with a deadline `timeout` from now (or the one already in force, if earlier).
    public static func withTimeout<T>(_ timeout: Duration, _ body: () async throws -> T) async rethrows -> T {
        try await withDeadline(.now + timeout, body)
    }

    /// Runs `body` under `timeout` when there is one, else as it is (no task-local write);
    /// keeps `body`'s error type.
    package static func within<T, Failure: Error>(
        _ timeout: Duration?, _ body: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        guard let timeout else { return try await body() }
        let deadline = ContinuousClock.now + timeout
        var outcome: Result<T, Failure>?
        await $instant.withValue(instant.map { min($0, deadline) } ?? deadline) {
            do throws(Failure) { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        }
        return try outcome!.get()
    }

    /// The earlier of `deadline` and the one in force.
    package static func earliest(_ deadline: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        guard let current = instant else { return deadline }
        return deadline.map { min($0, current) } ?? current
    }

    /// The shorter of `timeout` and the time left until the deadline in force (zero once it passed).
    package static func remaining(within timeout: Duration?) -> Duration? {
        guard let current = instant else { return timeout }
        let left = max(.zero, ContinuousClock.now.duration(to: current))
        return timeout.map { min($0, left) } ?? left
    }

    /// Whether the deadline in force has passed.
    package static var hasPassed: Bool { instant.map { $0 <= .now } ?? false }

    /// `error` as the caller should see it: a cancellation that the deadline caused (the task
    /// itself was not cancelled) is ``SQLError/Code/timeout``, with the cancellation underneath.
    package static func relabel(_ error: SQLError) -> SQLError {
        guard error.code == .cancelled, hasPassed, !Task.isCancelled else { return error }
        var timeout = SQLError(
            .timeout, kind: error.kind, message: "the deadline passed; the statement was cancelled (\(error.message))",
            nativeCode: error.nativeCode, sqlState: error.sqlState, backend: error.backend, node: error.node, underlying: error)
        timeout.batchRow = error.batchRow
        return timeout
    }
}

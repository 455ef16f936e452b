/// Keeps the tests that harm a shared server (kill it, stop it) apart from the
/// tests that only use it: any number of users at once, or one harmer alone.
/// A harmer waiting goes before users that arrive after it, so it is not starved.
public actor SharedServerGate {
    private var users = 0
    private var harming = false
    private var waitingHarmers: [CheckedContinuation<Void, Never>] = []
    private var waitingUsers: [CheckedContinuation<Void, Never>] = []

    /// Creates an open gate.
    public init() {}

    /// Runs `body` beside other users, never while a harmer runs.
    public func use<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if harming || !waitingHarmers.isEmpty {
            await withCheckedContinuation { waitingUsers.append($0) }
        } else {
            users += 1
        }
        defer { leaveUse() }
        return try await body()
    }

    /// Runs `body` alone: after the users in it have left, before any new one enters.
    public func harm<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if harming || users > 0 {
            await withCheckedContinuation { waitingHarmers.append($0) }
        } else {
            harming = true
        }
        defer { leaveHarm() }
        return try await body()
    }

    private func leaveUse() {
        users -= 1
        if users == 0, !waitingHarmers.isEmpty {
            harming = true
            waitingHarmers.removeFirst().resume()
        }
    }

    private func leaveHarm() {
        if !waitingHarmers.isEmpty {
            waitingHarmers.removeFirst().resume()  // still harming: the next harmer goes
            return
        }
        harming = false
        users += waitingUsers.count
        for user in waitingUsers { user.resume() }
        waitingUsers.removeAll()
    }
}

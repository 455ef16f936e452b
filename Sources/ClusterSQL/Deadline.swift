import ConnectionKit
import SQLCore

/// Runs `body` for at most `limit` on `clock`: past it the body is cancelled and
/// `SQLError.Code.timeout` is thrown once the body has unwound (the backends
/// stop promptly when cancelled). `onTimeout` runs the moment the limit passes,
/// so a caller can act (eject a node) without waiting for the unwinding.
func withDeadline<T: Sendable>(
    _ limit: Duration, on clock: AnyClock, what: String, onTimeout: @escaping @Sendable () -> Void = {},
    _ body: @escaping @Sendable () async throws(SQLError) -> T
) async throws(SQLError) -> T {
    let outcome = await withTaskGroup(of: DeadlineEvent<T>.self) { group -> Result<T, SQLError> in
        group.addTask {
            do throws(SQLError) { return .finished(.success(try await body())) } catch { return .finished(.failure(error)) }
        }
        group.addTask {
            do { try await clock.sleep(for: limit) } catch { return .timerCancelled }
            return .expired
        }
        var outcome: Result<T, SQLError>?
        while let event = await group.next() {
            switch event {
            case .finished(let result):
                if outcome == nil { outcome = result }
                group.cancelAll()
            case .expired:
                if outcome == nil {
                    outcome = .failure(SQLError(.timeout, message: "\(what) took longer than \(limit)"))
                    onTimeout()
                }
                group.cancelAll()
            case .timerCancelled:
                break
            }
        }
        return outcome ?? .failure(SQLError(.cancelled, message: "\(what) was cancelled"))
    }
    return try outcome.get()
}

private enum DeadlineEvent<T: Sendable>: Sendable {
    case finished(Result<T, SQLError>)
    case expired
    case timerCancelled
}

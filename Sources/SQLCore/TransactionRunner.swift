import ConnectionKit
import Synchronization

/// The step of a transaction that failed, which decides whether it may run again.
package enum TransactionPhase: Sendable, Hashable {
    /// `BEGIN`: nothing ran yet.
    case begin
    /// The caller's closure, before `COMMIT` was sent.
    case body
    /// `COMMIT`, once sent.
    case commit
}

/// A failed try of a transaction: the error to give the caller, and where it happened.
package struct TransactionFailure: Error {
    /// What the caller sees when the transaction is not run again.
    package var error: any Error
    /// Where it failed.
    package var phase: TransactionPhase

    /// Creates the failure.
    package init(error: any Error, phase: TransactionPhase) {
        self.error = error
        self.phase = phase
    }
}

extension SQLTransactionRetry {
    /// Whether a transaction that failed with `error` in `phase` may run again, by the rules
    /// in the type's documentation; `reconnects`: the next try borrows another connection.
    package static func allowsRetry(after error: any Error, in phase: TransactionPhase, reconnects: Bool) -> Bool {
        guard let error = error as? SQLError else { return false }
        if error.code == .transactionConflict { return true }
        switch phase {
        case .begin:
            return error.code == .busy || (reconnects && Self.isLostConnection(error))
        case .body:
            return reconnects && Self.isLostConnection(error)
        case .commit:
            return false
        }
    }

    /// A connection that broke, as opposed to a timeout or a cancellation, which a retry would only repeat.
    private static func isLostConnection(_ error: SQLError) -> Bool {
        error.isConnectionError && error.code != .timeout && error.code != .cancelled && error.code != .commitOutcomeUnknown
    }

    /// Runs `attempt` until it succeeds, fails in a way the rules do not retry, or has run
    /// ``maxAttempts`` times, pausing by ``backoff`` in between; `retried` is told of each new run.
    ///
    /// `attempt` throws a ``TransactionFailure`` for a failure of the transaction; anything
    /// else it throws (the pool could not lend a connection) ends the loop as it is.
    package func run<T>(
        reconnects: Bool, retried: (any Error) -> Void, _ attempt: () async throws -> T
    ) async throws -> T {
        var delays = Backoff(policy: backoff)
        var attempts = 1
        while true {
            do {
                return try await attempt()
            } catch let failure as TransactionFailure {
                guard attempts < maxAttempts, !Task.isCancelled, !SQLDeadline.hasPassed,
                    Self.allowsRetry(after: failure.error, in: failure.phase, reconnects: reconnects)
                else { throw failure.error }
                let pause = delays.next()
                // A pause that would outlast the deadline only postpones its timeout: the failure stands.
                if let left = SQLDeadline.remaining(within: nil), left <= pause { throw failure.error }
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    throw failure.error  // cancelled while pausing: the failure stands
                }
                attempts += 1
                retried(failure.error)
            }
        }
    }
}

/// One try of a transaction on one connection: `BEGIN`, the closure, `COMMIT`, or
/// a rollback when any of them fails; or, when the connection already holds a
/// transaction, a savepoint in its place.
package enum TransactionAttempt {
    /// Savepoint names, unique in the process, so that nested savepoints never clash with each other or a batch's.
    private static let savepoints = Atomic<UInt64>(0)

    /// Runs `body` in a transaction on `connection`, throwing a ``TransactionFailure`` that says where it failed.
    package static func run<T>(
        on connection: any SQLConnection, options: SQLTransactionOptions, _ body: (any SQLConnection) async throws -> T
    ) async throws(TransactionFailure) -> T {
        do {
            try await connection.begin(options)
        } catch {
            throw TransactionFailure(error: error, phase: .begin)
        }
        let result: T
        do {
            result = try await body(connection)
            try Self.checkBeforeCommit(connection)
        } catch {
            try? await connection.rollback()
            throw TransactionFailure(error: error, phase: .body)
        }
        do {
            try await connection.commit()
        } catch {
            let outcome = Self.commitFailure(error)
            if connection.isValid { try? await connection.rollback() }
            throw TransactionFailure(error: outcome, phase: .commit)
        }
        return result
    }

    /// Refuses to send `COMMIT` when it could not commit what the closure did, or should not be
    /// sent at all: the task was cancelled or its deadline passed (a clean rollback beats an
    /// unknown outcome); the transaction failed (PostgreSQL would answer `COMMIT` with a silent
    /// rollback); or it is gone (MariaDB undid it after a deadlock the closure swallowed, or the
    /// closure ended it itself: what ran after that committed on its own).
    private static func checkBeforeCommit(_ connection: any SQLConnection) throws(SQLError) {
        if Task.isCancelled { throw SQLError(.cancelled, message: "the task was cancelled before COMMIT; rolled back") }
        if SQLDeadline.hasPassed {
            throw SQLError(.timeout, kind: .statement, message: "the deadline passed before COMMIT; rolled back")
        }
        switch connection.transactionStatus {
        case .failed:
            throw SQLError(
                .misuse,
                message: "a statement in the transaction failed and its error was not rethrown (nor undone by a savepoint); rolled back")
        case .idle:
            throw SQLError(
                .misuse,
                message:
                    "the transaction ended before COMMIT (the server undid it after an error the closure did not rethrow, or the closure ended it); what ran after that ran on its own"
            )
        case .inTransaction, .unknown:
            return
        }
    }

    /// What a failed `COMMIT` tells the caller: a refusal from the server (a conflict, a deferred
    /// constraint) is itself; a lost answer (the connection broke, the call was cancelled or timed out)
    /// is ``SQLError/Code/commitOutcomeUnknown``, wrapping it.
    package static func commitFailure(_ error: SQLError) -> SQLError {
        guard error.isConnectionError || error.code == .cancelled || error.code == .timeout else { return error }
        var unknown = SQLError(
            .commitOutcomeUnknown,
            message: "COMMIT was sent but its answer was lost (\(error.code)): the transaction may or may not be committed",
            backend: error.backend, node: error.node, underlying: error)
        unknown.nativeCode = error.nativeCode
        return unknown
    }

    /// Runs `body` inside the transaction `connection` already holds, in a savepoint: released
    /// when `body` returns, rolled back to (and released) when it throws; rethrows what `body` threw.
    package static func nested<T>(
        on connection: any SQLConnection, options: SQLTransactionOptions, _ body: (any SQLConnection) async throws -> T
    ) async throws -> T {
        guard options.isDefault else {
            throw SQLError(.misuse, message: "a nested transaction cannot set options: the outermost transaction's apply")
        }
        let name = "clustersql_savepoint_\(savepoints.add(1, ordering: .relaxed).newValue)"
        _ = try await connection.execute("SAVEPOINT \(name)", [])
        let result: T
        do {
            result = try await body(connection)
        } catch {
            // After a deadlock MariaDB has already undone the whole transaction and the savepoint
            // with it: these fail, and the error that ended the transaction is what counts.
            if (try? await connection.execute("ROLLBACK TO SAVEPOINT \(name)", [])) != nil {
                _ = try? await connection.execute("RELEASE SAVEPOINT \(name)", [])
            }
            throw error
        }
        _ = try await connection.execute("RELEASE SAVEPOINT \(name)", [])
        return result
    }
}

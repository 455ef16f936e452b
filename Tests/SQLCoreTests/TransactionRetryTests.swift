import ConnectionKit
import SQLCore
import Synchronization
import Testing

/// The retry rules of `withTransaction`, without a database: which failure may run a
/// transaction again, and the loop that follows them.
@Suite("transaction retry rules", .timeLimit(.minutes(1)))
struct TransactionRetryTests {
    static let conflict = SQLError(.transactionConflict, message: "40001")
    static let busy = SQLError(.busy, message: "locked")
    static let lost = SQLError(.connectionLost, message: "reset")
    static let timeout = SQLError(.timeout, message: "slow")
    static let cancelled = SQLError(.cancelled, message: "cancelled")
    static let syntax = SQLError(.syntaxError, message: "typo")

    @Test("a conflict is retried in every phase; busy only at BEGIN; a lost connection only before COMMIT and only with a new one")
    func rules() {
        for phase in [TransactionPhase.begin, .body, .commit] {
            #expect(SQLTransactionRetry.allowsRetry(after: Self.conflict, in: phase, reconnects: false))
            #expect(!SQLTransactionRetry.allowsRetry(after: Self.syntax, in: phase, reconnects: true))
            #expect(!SQLTransactionRetry.allowsRetry(after: Self.timeout, in: phase, reconnects: true))
            #expect(!SQLTransactionRetry.allowsRetry(after: Self.cancelled, in: phase, reconnects: true))
            struct Other: Error {}
            #expect(!SQLTransactionRetry.allowsRetry(after: Other(), in: phase, reconnects: true))
        }
        #expect(SQLTransactionRetry.allowsRetry(after: Self.busy, in: .begin, reconnects: false))
        #expect(!SQLTransactionRetry.allowsRetry(after: Self.busy, in: .body, reconnects: true))
        #expect(!SQLTransactionRetry.allowsRetry(after: Self.busy, in: .commit, reconnects: true))
        #expect(SQLTransactionRetry.allowsRetry(after: Self.lost, in: .body, reconnects: true))
        #expect(SQLTransactionRetry.allowsRetry(after: Self.lost, in: .begin, reconnects: true))
        #expect(!SQLTransactionRetry.allowsRetry(after: Self.lost, in: .body, reconnects: false))
        #expect(!SQLTransactionRetry.allowsRetry(after: Self.lost, in: .commit, reconnects: true))
        let unknown = TransactionAttempt.commitFailure(Self.lost)
        #expect(!SQLTransactionRetry.allowsRetry(after: unknown, in: .commit, reconnects: true))
    }

    @Test("a failed COMMIT: lost answers become commitOutcomeUnknown wrapping the cause; the server's refusals stay themselves")
    func commitFailures() {
        for cause in [Self.lost, Self.timeout, Self.cancelled] {
            let failure = TransactionAttempt.commitFailure(cause)
            #expect(failure.code == .commitOutcomeUnknown)
            #expect(failure.isConnectionError)
            #expect((failure.underlying as? SQLError)?.code == cause.code)
        }
        #expect(TransactionAttempt.commitFailure(Self.conflict).code == .transactionConflict)
        #expect(TransactionAttempt.commitFailure(SQLError(.constraintViolation, message: "deferred")).code == .constraintViolation)
    }

    @Test("the loop runs again up to maxAttempts, says each retry, and gives up with the last failure")
    func loop() async throws {
        let retry = SQLTransactionRetry(maxAttempts: 3, backoff: BackoffPolicy(initial: .milliseconds(1), maximum: .milliseconds(2)))
        let runs = Atomic<Int>(0)
        var retried = 0
        await #expect(throws: SQLError.self) {
            try await retry.run(reconnects: false, retried: { _ in retried += 1 }) { () async throws -> Void in
                runs.add(1, ordering: .relaxed)
                throw TransactionFailure(error: Self.conflict, phase: .body)
            }
        }
        #expect(runs.load(ordering: .relaxed) == 3)
        #expect(retried == 2)
        // Succeeds on the second run.
        runs.store(0, ordering: .relaxed)
        let value = try await retry.run(reconnects: false, retried: { _ in }) { () async throws -> Int in
            if runs.add(1, ordering: .relaxed).newValue == 1 { throw TransactionFailure(error: Self.conflict, phase: .commit) }
            return 42
        }
        #expect(value == 42)
        // Not a transaction failure (the pool could not lend a connection): not retried, thrown as it is.
        runs.store(0, ordering: .relaxed)
        await #expect(throws: SQLError.self) {
            try await retry.run(reconnects: true, retried: { _ in }) { () async throws -> Void in
                runs.add(1, ordering: .relaxed)
                throw Self.conflict
            }
        }
        #expect(runs.load(ordering: .relaxed) == 1)
        #expect(SQLTransactionRetry(maxAttempts: 0).maxAttempts == 1)
    }
}

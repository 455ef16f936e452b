import SQLCore
import Testing

@testable import ClusterSQL

/// The retry rule of a cluster connection, as a table.
@Suite("Statement retry rule")
struct StatementRetryTests {
    static func mayRetry(
        _ code: SQLError.Code, kind: SQLError.Kind? = nil, attempt: Int = 1, inTransaction: Bool = false,
        idempotent: Bool = false
    ) -> Bool {
        let error = kind.map { SQLError(code, kind: $0, message: "x") } ?? SQLError(code, message: "x")
        return StatementRetry.mayRetry(after: error, attempt: attempt, maxAttempts: 3, inTransaction: inTransaction, idempotent: idempotent)
    }

    @Test("an error that proves the statement never reached a server is retried, whatever the statement")
    func notSent() {
        for code: SQLError.Code in [
            .closed, .connectionFailed, .nodeNotReady, .tooManyConnections, .noEligibleNode, .allNodesFailed,
            .noNodes, .roleMismatch, .nodeChanged,
        ] {
            #expect(Self.mayRetry(code, kind: .connection), "\(code)")
        }
    }

    @Test("a connection lost or timed out after sending: retried only when idempotent")
    func maybeSent() {
        for code: SQLError.Code in [.connectionLost, .timeout, .protocolViolation] {
            #expect(!Self.mayRetry(code), "\(code)")
            #expect(Self.mayRetry(code, idempotent: true), "\(code)")
        }
    }

    @Test("never in a transaction, past the attempts, after a cancellation, or for a statement error")
    func never() {
        #expect(!Self.mayRetry(.connectionFailed, inTransaction: true, idempotent: true))
        #expect(!Self.mayRetry(.connectionFailed, attempt: 3, idempotent: true))
        #expect(Self.mayRetry(.connectionFailed, attempt: 2))
        #expect(!Self.mayRetry(.cancelled, kind: .connection, idempotent: true))
        #expect(!Self.mayRetry(.syntaxError, idempotent: true))
        #expect(!Self.mayRetry(.readOnly, idempotent: true))
    }

    @Test("plain reads: SELECT, SHOW, VALUES, EXPLAIN without ANALYZE, after comments; not FOR UPDATE")
    func plainReads() {
        for sql in ["SELECT 1", "  -- c\n select * from t", "/* x */ SHOW TABLES", "VALUES (1)", "EXPLAIN SELECT 1"] {
            #expect(StatementKind.isPlainRead(sql), "\(sql)")
        }
        for sql in ["INSERT INTO t VALUES (1)", "SELECT * FROM t FOR UPDATE", "EXPLAIN ANALYZE SELECT 1", "/* open", ""] {
            #expect(!StatementKind.isPlainRead(sql), "\(sql)")
        }
    }
}

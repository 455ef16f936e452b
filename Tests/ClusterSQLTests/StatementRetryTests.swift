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

    @Test("a connection lost after sending: retried only when idempotent, and only once")
    func maybeSent() {
        for code: SQLError.Code in [.connectionLost, .protocolViolation] {
            #expect(!Self.mayRetry(code), "\(code)")
            #expect(Self.mayRetry(code, idempotent: true), "\(code)")
            #expect(!Self.mayRetry(code, attempt: 2, idempotent: true), "\(code): a retried read never walks on to a third node")
        }
    }

    @Test("a statement past its query timeout is never run again elsewhere: a slow statement is slow everywhere")
    func timedOut() {
        #expect(!Self.mayRetry(.timeout))
        #expect(!Self.mayRetry(.timeout, idempotent: true))
    }

    @Test("never in a transaction, past the attempts, after a cancellation, or for a statement error")
    func never() {
        #expect(!Self.mayRetry(.connectionFailed, inTransaction: true, idempotent: true))
        #expect(!Self.mayRetry(.connectionFailed, attempt: 3, idempotent: true))
        #expect(Self.mayRetry(.connectionFailed, attempt: 2))
        #expect(!Self.mayRetry(.cancelled, kind: .connection, idempotent: true))
        #expect(!Self.mayRetry(.syntaxError, idempotent: true))
        #expect(!Self.mayRetry(.readOnly, idempotent: true))
        #expect(!Self.mayRetry(.tooManyParameters, idempotent: true))
    }

    @Test("plain reads: one SELECT, SHOW or VALUES statement, after comments")
    func plainReads() {
        for sql in [
            "SELECT 1", "  -- c\n select * from t", "/* x */ SHOW TABLES", "VALUES (1)", "SELECT a FROM t WHERE id = ?;",
            "select name from t where id in (?, ?)",
        ] {
            #expect(StatementKind.isPlainRead(sql), "\(sql)")
        }
    }

    @Test("what may write or lock is never taken for a plain read, however it is spelled")
    func notPlainReads() {
        for sql in [
            "INSERT INTO t VALUES (1)", "SELECT * FROM t FOR UPDATE", "select * from t for share", "SELECT * FROM t FOR NO KEY UPDATE",
            "SELECT * FROM t LOCK IN SHARE MODE", "EXPLAIN SELECT 1", "EXPLAIN ANALYZE SELECT 1",
            "EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)",
            "EXPLAIN ANALYSE INSERT INTO t VALUES (1)", "explain (analyse, buffers) delete from t", "SELECT 1; INSERT INTO t VALUES (1)",
            "select 1;delete from t", "SELECT nextval('s')", "SELECT NEXTVAL('s')", "SELECT setval('s', 4)", "SELECT * INTO copy FROM t",
            "SELECT a INTO @x FROM t", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "/* open", "",
        ] {
            #expect(!StatementKind.isPlainRead(sql), "\(sql)")
        }
    }
}

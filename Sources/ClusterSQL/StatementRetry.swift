import SQLCore

/// The retry rule of ``ClusterConnection``, as a pure function.
enum StatementRetry {
    /// Whether a statement that failed with the connection-class `error` on its
    /// `attempt`-th node may run again on another node: never inside a
    /// transaction, never past `maxAttempts`, never after a cancellation; and
    /// only when it surely never reached the server (``StatementKind/wasNotSent(_:)``)
    /// or running it twice is harmless (`idempotent`).
    static func mayRetry(after error: SQLError, attempt: Int, maxAttempts: Int, inTransaction: Bool, idempotent: Bool) -> Bool {
        guard error.isConnectionError, error.code != .cancelled, !inTransaction, attempt < maxAttempts else { return false }
        return StatementKind.wasNotSent(error) || idempotent
    }
}

/// Classifies statements for the retry rules.
enum StatementKind {
    /// Whether `sql` only reads: it starts with `SELECT`, `SHOW`, `VALUES`, or
    /// `EXPLAIN` not followed by `ANALYZE` (after spaces and comments).
    static func isPlainRead(_ sql: String) -> Bool {
        let words = leadingWords(sql, count: 2)
        switch words.first {
        case "SELECT", "SHOW", "VALUES": return !sql.uppercased().contains("FOR UPDATE")
        case "EXPLAIN": return words.count < 2 || words[1] != "ANALYZE"
        default: return false
        }
    }

    /// Whether a connection-class error proves the statement never reached the
    /// server (or the server refused it before running it).
    static func wasNotSent(_ error: SQLError) -> Bool {
        [
            .closed, .connectionFailed, .nodeNotReady, .tooManyConnections, .noEligibleNode, .allNodesFailed, .noNodes,
            .roleMismatch, .nodeChanged,
        ].contains(error.code)
    }

    private static func leadingWords(_ sql: String, count: Int) -> [String] {
        var rest = Substring(sql)
        var words: [String] = []
        while words.count < count {
            rest = rest.drop { $0.isWhitespace }
            if rest.hasPrefix("--") {
                rest = rest.drop { $0 != "\n" }
            } else if rest.hasPrefix("/*") {
                guard let end = rest.range(of: "*/") else { return words }
                rest = rest[end.upperBound...]
            } else {
                let word = rest.prefix { $0.isLetter }
                guard !word.isEmpty else { return words }
                words.append(word.uppercased())
                rest = rest.dropFirst(word.count)
            }
        }
        return words
    }
}

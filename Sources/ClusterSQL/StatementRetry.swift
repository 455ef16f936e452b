import Foundation
import SQLCore

/// The retry rule of ``ClusterConnection``, as a pure function.
enum StatementRetry {
    /// Whether a statement that failed with the connection-class `error` on its
    /// `attempt`-th node may run again on another node: never inside a
    /// transaction, never past `maxAttempts`, never after a cancellation; when it
    /// surely never reached the server (``StatementKind/wasNotSent(_:)``); or, when
    /// running it twice is harmless (`idempotent`), once: not after a query timeout
    /// (a slow statement would be slow on every node) and not on a third node.
    static func mayRetry(after error: SQLError, attempt: Int, maxAttempts: Int, inTransaction: Bool, idempotent: Bool) -> Bool {
        guard error.isConnectionError, error.code != .cancelled, !inTransaction, attempt < maxAttempts else { return false }
        if StatementKind.wasNotSent(error) { return true }
        return idempotent && error.code != .timeout && attempt == 1
    }
}

/// Classifies statements for the retry rules.
enum StatementKind {
    /// Whether `sql` looks like it only reads: one statement (no `;` but a
    /// trailing one) that starts with `SELECT`, `SHOW` or `VALUES` (after spaces
    /// and comments) and holds none of the words that make a read write or lock
    /// (`INTO`, `FOR UPDATE`, `FOR SHARE`, `ANALYZE`/`ANALYSE`, `NEXTVAL`, `SETVAL`).
    ///
    /// A heuristic, not a proof: a function called from a `SELECT` may write, and
    /// no reading of the text can tell. It errs towards "not a read": a word in a
    /// string literal or a column name counts too, and `EXPLAIN` never passes.
    static func isPlainRead(_ sql: String) -> Bool {
        guard let first = leadingWords(sql, count: 1).first, ["SELECT", "SHOW", "VALUES"].contains(first) else { return false }
        var body = Substring(sql)
        while let last = body.last, last.isWhitespace || last == ";" { body.removeLast() }
        if body.contains(";") { return false }
        let upper = body.uppercased()
        let words = upper.split { !($0.isLetter || $0.isNumber || $0 == "_") }
        for (index, word) in words.enumerated() {
            switch word {
            case "INTO", "ANALYZE", "ANALYSE", "NEXTVAL", "SETVAL", "LASTVAL": return false
            case "FOR" where index + 1 < words.count && ["UPDATE", "SHARE", "NO", "KEY"].contains(words[index + 1]): return false
            case "LOCK" where index + 2 < words.count && words[index + 1] == "IN" && words[index + 2] == "SHARE": return false
            default: continue
            }
        }
        return true
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

import CLibPQ
import SQLCore

/// Maps libpq failures onto `SQLError`.
enum PostgresErrors {
    /// The error of a failed result: SQLSTATE, severity, message; detail and hint kept apart.
    static func error(from result: OpaquePointer) -> SQLError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let sqlState = field("C")
        let primary = field("M") ?? String(cString: PQresultErrorMessage(result))
        let severity = field("V") ?? field("S")
        var detail: [String] = []
        if let d = field("D") { detail.append("DETAIL: \(d)") }
        if let h = field("H") { detail.append("HINT: \(h)") }
        let message = severity.map { "\($0): \(primary)" } ?? primary
        return SQLError(
            code(forSQLState: sqlState), message: message.trimmingNewlines(), sqlState: sqlState,
            detail: detail.isEmpty ? nil : detail.joined(separator: "\n"), backend: "postgres")
    }

    /// The error of a connection-level failure (no result), from `PQerrorMessage`.
    static func connectionError(_ conn: OpaquePointer?, whileConnecting: Bool) -> SQLError {
        let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
        let lowered = message.lowercased()
        let code: SQLError.Code =
            lowered.contains("password authentication failed") || lowered.contains("no password supplied")
                || lowered.contains("no pg_hba.conf entry")
            ? .authenticationFailed
            : lowered.contains("too many clients") || lowered.contains("remaining connection slots")
                ? .tooManyConnections
                : lowered.contains("the database system is starting up") || lowered.contains("not yet accepting connections")
                    ? .nodeNotReady
                    : whileConnecting ? .connectionFailed : .connectionLost
        return SQLError(code, kind: .connection, message: message.trimmingNewlines(), backend: "postgres")
    }

    /// Why libpq refused to send a statement: a connection that is still good means libpq refused the
    /// statement itself (a client-side check, out of memory), which is statement-class; else the connection's.
    static func sendError(_ conn: OpaquePointer) -> SQLError {
        guard PQstatus(conn) == CONNECTION_OK else { return connectionError(conn, whileConnecting: false) }
        let message = String(cString: PQerrorMessage(conn)).trimmingNewlines()
        return SQLError(.misuse, kind: .statement, message: "libpq refused the statement: \(message)", backend: "postgres")
    }

    /// SQLSTATE classes to portable codes; connection exceptions (08) and
    /// operator intervention (57P0x: shutdown) condemn the connection.
    static func code(forSQLState state: String?) -> SQLError.Code {
        guard let state else { return .serverError }
        switch state {
        case "57014": return .cancelled
        case "53300": return .tooManyConnections
        case "57P03": return .nodeNotReady
        case "25006": return .readOnly
        case "28P01", "28000": return .authenticationFailed
        case "40001", "40P01": return .transactionConflict
        case "55P03": return .busy
        default: break
        }
        switch state.prefix(2) {
        case "23": return .constraintViolation
        case "42": return .syntaxError
        case "08": return .connectionLost
        case "57": return .connectionLost
        case "22": return state == "22P02" || state == "22003" || state == "22007" || state == "22008" ? .typeMismatch : .serverError
        default: return .serverError
        }
    }
}

extension String {
    func trimmingNewlines() -> String {
        var text = self
        while text.last?.isNewline == true { text.removeLast() }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

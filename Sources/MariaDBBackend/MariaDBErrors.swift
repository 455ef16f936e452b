import CMariaDB
import SQLCore

/// Maps Connector/C and server error numbers onto `SQLError`.
enum MariaDBErrors {
    /// The error last reported on a connection handle.
    static func error(_ mysql: UnsafeMutablePointer<MYSQL>, connecting: Bool) -> SQLError {
        make(
            number: Int(mysql_errno(mysql)), state: String(cString: mysql_sqlstate(mysql)),
            message: String(cString: mysql_error(mysql)), connecting: connecting)
    }

    /// The error last reported on a prepared statement.
    static func error(_ statement: UnsafeMutablePointer<MYSQL_STMT>) -> SQLError {
        make(
            number: Int(mysql_stmt_errno(statement)), state: String(cString: mysql_stmt_sqlstate(statement)),
            message: String(cString: mysql_stmt_error(statement)), connecting: false)
    }

    static func make(number: Int, state: String, message: String, connecting: Bool) -> SQLError {
        let (code, kind) = classify(number: number, state: state, connecting: connecting)
        return SQLError(
            code, kind: kind, message: message.isEmpty ? "error \(number)" : message, nativeCode: number,
            sqlState: state == "00000" || state.isEmpty ? nil : state, backend: "mariadb")
    }

    /// The portable code and kind of an error number.
    ///
    /// Client errors (2000–2999) during a connect are connection failures;
    /// afterwards, only those that mean the link is gone condemn the
    /// connection. Galera's 1047 ("WSREP has not yet prepared node") is
    /// `SQLError.Code.nodeNotReady`: the node must be set aside.
    static func classify(number: Int, state: String, connecting: Bool) -> (SQLError.Code, SQLError.Kind?) {
        switch number {
        case 1045, 1044, 1698, 1251, 1862: return (.authenticationFailed, .connection)
        case 1040, 1203: return (.tooManyConnections, .connection)
        case 1047: return (.nodeNotReady, .connection)
        case 2006, 2013, 2055, 1053, 1927, 1152, 1153, 1159, 1161: return (.connectionLost, .connection)
        case 2027: return (.protocolViolation, .connection)
        case 2014: return (.misuse, .connection)
        case 1290, 1836, 1792: return (.readOnly, nil)
        case 1062, 1451, 1452, 1048, 1364, 1557, 1586, 4025, 3819: return (.constraintViolation, nil)
        case 1213, 1020: return (.transactionConflict, nil)
        case 1205: return (.busy, nil)
        case 1317: return (.cancelled, nil)
        case 1969, 3024: return (.timeout, .statement)
        case 1406, 1118, 1301: return (.tooBig, nil)
        case 1264, 1265, 1292, 1366, 1367, 1411: return (.typeMismatch, nil)
        case 2031, 2034, 2030, 2057: return (.parameterCountMismatch, nil)
        case 1390: return (.tooManyParameters, nil)  // ER_PS_MANY_PARAM: more than 65,535 placeholders
        default: break
        }
        if connecting || [2001, 2002, 2003, 2004, 2005, 2026].contains(number) {
            return (.connectionFailed, .connection)
        }
        if state.hasPrefix("08") { return (.connectionLost, .connection) }
        if state.hasPrefix("42") || number == 1064 { return (.syntaxError, nil) }
        if state.hasPrefix("23") { return (.constraintViolation, nil) }
        if state.hasPrefix("22") { return (.typeMismatch, nil) }
        return (.serverError, nil)
    }
}

extension SQLError {
    /// The error with the configuration's password scrubbed from its message.
    func redacted(_ configuration: MariaDBConfiguration) -> SQLError { redacting(password: configuration.password) }
}

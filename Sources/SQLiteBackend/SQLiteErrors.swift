import CSQLite3
import SQLCore

extension SQLError.Code {
    /// SQLite could not read or write the database file (`SQLITE_IOERR`, `SQLITE_FULL`, `SQLITE_NOMEM`).
    public static let sqliteIOError = SQLError.Code("ioError", defaultKind: .connection)
}

/// Maps SQLite result codes onto `SQLError`.
enum SQLiteErrors {
    /// The error for result code `rc` on `db`; reads `sqlite3_errmsg` at once, on the connection's thread.
    static func error(_ rc: Int32, db: OpaquePointer?, duringPrepare: Bool = false) -> SQLError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        return error(rc, message: message, duringPrepare: duringPrepare)
    }

    /// The error for result code `rc` with `message`.
    static func error(_ rc: Int32, message: String, duringPrepare: Bool = false) -> SQLError {
        // Past SQLITE_LIMIT_VARIABLE_NUMBER, prepare fails with a plain SQLITE_ERROR; only its message tells.
        let code = duringPrepare && message == "too many SQL variables" ? .tooManyParameters : code(for: rc, duringPrepare: duringPrepare)
        return SQLError(code, message: message, nativeCode: Int(rc), backend: "sqlite")
    }

    static func code(for rc: Int32, duringPrepare: Bool) -> SQLError.Code {
        switch rc & 0xff {
        case SQLITE_CONSTRAINT: .constraintViolation
        case SQLITE_BUSY, SQLITE_LOCKED: .busy
        case SQLITE_READONLY: .readOnly
        case SQLITE_CORRUPT: .corrupt
        case SQLITE_NOTADB: .notADatabase
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH: .cannotOpen
        case SQLITE_INTERRUPT: .cancelled
        case SQLITE_TOOBIG: .tooBig
        case SQLITE_MISUSE: .misuse
        case SQLITE_RANGE: .parameterCountMismatch
        case SQLITE_MISMATCH: .typeMismatch
        case SQLITE_IOERR, SQLITE_FULL, SQLITE_NOMEM: .sqliteIOError
        case SQLITE_ERROR where duringPrepare: .syntaxError
        default: .serverError
        }
    }
}

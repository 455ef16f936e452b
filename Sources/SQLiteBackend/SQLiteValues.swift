import CSQLite3
import SQLCore

/// Binding ``SQLValue``s to SQLite statements and reading them back.
///
/// SQLite stores NULL, INTEGER, REAL, TEXT and BLOB. The other cases are
/// stored so that they come back exact and sort correctly:
/// - `bool` as INTEGER 0/1, read back as `bool` in a column declared `BOOL`/`BOOLEAN`;
/// - `date` as TEXT `YYYY-MM-DD`, read back as `date` in a column declared `DATE`;
/// - `timestamp` as TEXT `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC), read back as
///   `timestamp` in a column declared `DATETIME` or `TIMESTAMP`;
/// - `decimal` as TEXT, exact in a TEXT or untyped column (a column declared
///   `NUMERIC`/`DECIMAL` makes SQLite keep only 15 digits);
/// - a NaN double as TEXT `NaN` (SQLite would store NULL), read back as a NaN
///   double in a column declared `REAL`, `FLOAT` or `DOUBLE`; the infinities
///   are stored as REAL. SQLite stores integral REALs as integers, so `-0.0`
///   reads back as `0.0`.
/// In other columns they come back as their storage form, which the typed
/// decoders of ``SQLValueConvertible`` accept.
enum SQLiteValues {
    /// Binds every parameter; text and blobs are copied into `arena` and bound from there
    /// (see ``SQLiteBindingArena``), or copied by SQLite when they do not fit.
    static func bind(
        _ parameters: [SQLValue], to statement: OpaquePointer, db: OpaquePointer, arena: SQLiteBindingArena
    ) throws(SQLError) {
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard expected == parameters.count else {
            throw SQLError(
                .parameterCountMismatch,
                message: "the statement has \(expected) placeholders but \(parameters.count) values were given",
                backend: "sqlite")
        }
        var bytes = 0
        for value in parameters {
            switch value {
            case .text(let text): bytes += text.utf8.count
            case .blob(let blob): bytes += blob.count
            default: break
            }
        }
        let inArena = bytes > 0 && arena.reset(reserving: bytes)
        for (offset, value) in parameters.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .text(let text) where inArena:
                let copy = arena.copy(text)
                rc = clustersql_sqlite3_bind_text_static(
                    statement, index, copy.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(copy.count))
            case .blob(let blob) where inArena:
                let copy = arena.copy(blob)
                rc = clustersql_sqlite3_bind_blob_static(statement, index, copy.baseAddress, Int32(copy.count))
            default:
                rc = bindOne(value, at: index, statement)
            }
            guard rc == SQLITE_OK else { throw SQLiteErrors.error(rc, db: db) }
        }
    }

    private static func bindOne(_ value: SQLValue, at index: Int32, _ statement: OpaquePointer) -> Int32 {
        switch value {
        case .null: return sqlite3_bind_null(statement, index)
        case .integer(let v): return sqlite3_bind_int64(statement, index, v)
        case .bool(let v): return sqlite3_bind_int64(statement, index, v ? 1 : 0)
        case .double(let v) where v.isNaN: return bindText("NaN", at: index, statement)
        case .double(let v): return sqlite3_bind_double(statement, index, v)
        case .text(let v): return bindText(v, at: index, statement)
        case .date(let v): return bindText(v.description, at: index, statement)
        case .timestamp(let v): return bindText(v.description, at: index, statement)
        case .decimal(let v): return bindText(v.text, at: index, statement)
        case .blob(let bytes):
            guard bytes.count <= Int32.max else { return SQLITE_TOOBIG }
            return bytes.withUnsafeBytes { raw in
                clustersql_sqlite3_bind_blob_transient(statement, index, raw.baseAddress, Int32(raw.count))
            }
        }
    }

    private static func bindText(_ text: String, at index: Int32, _ statement: OpaquePointer) -> Int32 {
        var text = text
        return text.withUTF8 { utf8 in
            guard utf8.count <= Int32.max else { return SQLITE_TOOBIG }
            // An empty buffer may have no base address; SQLite would then bind NULL.
            let base = utf8.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(("" as StaticString).utf8Start)
            return clustersql_sqlite3_bind_text_transient(
                statement, index, base.assumingMemoryBound(to: CChar.self), Int32(utf8.count))
        }
    }

    /// Reads rows of one statement, with column names and declared kinds computed once.
    struct RowReader {
        let statement: OpaquePointer
        let columns: SQLColumns
        private let kinds: [DeclaredKind]

        enum DeclaredKind {
            case plain, boolean, date, timestamp, real

            init(declaredType: String?) {
                guard let type = declaredType?.uppercased() else {
                    self = .plain
                    return
                }
                if type.contains("BOOL") {
                    self = .boolean
                } else if type == "DATE" {
                    self = .date
                } else if type.contains("DATETIME") || type.contains("TIMESTAMP") {
                    self = .timestamp
                } else if type.contains("REAL") || type.contains("FLOA") || type.contains("DOUB") {
                    self = .real
                } else {
                    self = .plain
                }
            }
        }

        init(statement: OpaquePointer) {
            self.statement = statement
            let count = Int(sqlite3_column_count(statement))
            var names: [String] = []
            var kinds: [DeclaredKind] = []
            names.reserveCapacity(count)
            kinds.reserveCapacity(count)
            for i in 0..<Int32(count) {
                names.append(sqlite3_column_name(statement, i).map { String(cString: $0) } ?? "column\(i + 1)")
                kinds.append(DeclaredKind(declaredType: sqlite3_column_decltype(statement, i).map { String(cString: $0) }))
            }
            self.columns = SQLColumns(names)
            self.kinds = kinds
        }

        /// Appends the current row's values.
        func readRow(into rows: inout SQLRowsBuilder) {
            for (i, kind) in kinds.enumerated() {
                rows.append(read(Int32(i), kind))
            }
        }

        private func read(_ i: Int32, _ kind: DeclaredKind) -> SQLValue {
            switch sqlite3_column_type(statement, i) {
            case SQLITE_NULL:
                return .null
            case SQLITE_INTEGER:
                let v = sqlite3_column_int64(statement, i)
                if kind == .boolean, v == 0 || v == 1 { return .bool(v == 1) }
                return .integer(v)
            case SQLITE_FLOAT:
                return .double(sqlite3_column_double(statement, i))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(statement, i))
                guard count > 0, let base = sqlite3_column_blob(statement, i) else { return .blob([]) }
                return .blob(Array(UnsafeRawBufferPointer(start: base, count: count)))
            default:
                let count = Int(sqlite3_column_bytes(statement, i))
                let text =
                    sqlite3_column_text(statement, i).map {
                        String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
                    } ?? ""
                switch kind {
                case .date: if let d = SQLDate(text) { return .date(d) }
                case .timestamp: if let t = SQLTimestamp(text) { return .timestamp(t) }
                case .real where text == "NaN": return .double(.nan)
                default: break
                }
                return .text(text)
            }
        }
    }
}

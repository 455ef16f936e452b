import CMariaDB
import Foundation
import SQLCore

/// Column-wise parameter arrays for Connector/C's bulk execution
/// (`STMT_ATTR_ARRAY_SIZE`, sent as one `COM_STMT_BULK_EXECUTE`): each column
/// one C array of fixed-size values, or of pointers and lengths into one byte
/// buffer, with a NULL indicator per row. Made only when every column keeps
/// one type across the rows (NULLs aside), as the protocol requires.
final class BulkBinds {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    let rowCount: Int
    private var allocations: [UnsafeMutableRawPointer] = []

    /// The binds for `rows` (each `columns` long), or `nil` when a column mixes types.
    init?(_ rows: ArraySlice<[SQLValue]>, columns: Int) throws(SQLError) {
        rowCount = rows.count
        binds = .allocate(capacity: max(columns, 1))
        binds.initialize(repeating: MYSQL_BIND(), count: max(columns, 1))
        for column in 0..<columns {
            guard try fill(column, rows) else { return nil }
        }
    }

    deinit {
        allocations.forEach { free($0) }
        binds.deallocate()
    }

    private static func isNull(_ value: SQLValue) -> Bool {
        if case .null = value { return true }
        return false
    }

    private func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let pointer = malloc(max(bytes, 1))!
        allocations.append(pointer)
        return pointer
    }

    /// Fills column `column`'s arrays straight from the rows (each value converted
    /// where it is stored, no copy of the rows made); `false` when its rows disagree on the type.
    private func fill(_ column: Int, _ rows: ArraySlice<[SQLValue]>) throws(SQLError) -> Bool {
        var type = MYSQL_TYPE_STRING
        for row in rows where !Self.isNull(row[column]) {
            type = try ParameterValue(row[column]).bufferType
            break
        }
        let indicators = allocate(rowCount).assumingMemoryBound(to: CChar.self)
        binds[column].buffer_type = type
        binds[column].u.indicator = indicators
        switch type {
        case MYSQL_TYPE_LONGLONG, MYSQL_TYPE_DOUBLE, MYSQL_TYPE_TINY, MYSQL_TYPE_DATE, MYSQL_TYPE_DATETIME:
            let size = type == MYSQL_TYPE_TINY ? 1 : type == MYSQL_TYPE_LONGLONG || type == MYSQL_TYPE_DOUBLE ? 8 : MemoryLayout<MYSQL_TIME>.size
            let values = allocate(size * rowCount)
            for (index, row) in rows.enumerated() {
                let slot = values + index * size
                indicators[index] = CChar(STMT_INDICATOR_NONE.rawValue)
                switch row[column] {
                case .null: indicators[index] = CChar(STMT_INDICATOR_NULL.rawValue)
                case .integer(let v) where type == MYSQL_TYPE_LONGLONG: slot.storeBytes(of: v, as: Int64.self)
                case let value:
                    switch try ParameterValue(value) {
                    case .double(let v) where type == MYSQL_TYPE_DOUBLE: slot.storeBytes(of: v, as: Double.self)
                    case .tiny(let v) where type == MYSQL_TYPE_TINY: slot.storeBytes(of: v, as: Int8.self)
                    case .time(let v, let t) where t == type: slot.storeBytes(of: v, as: MYSQL_TIME.self)
                    default: return false
                    }
                }
            }
            binds[column].buffer = values
            binds[column].buffer_length = UInt(size)
        default:
            var total = 0
            for row in rows where !Self.isNull(row[column]) {
                guard case .bytes(let bytes, let t) = try ParameterValue(row[column]), t == type else { return false }
                total += bytes.count
            }
            let data = allocate(total)
            let pointers = allocate(MemoryLayout<UnsafeMutableRawPointer?>.stride * rowCount).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            let lengths = allocate(MemoryLayout<UInt>.stride * rowCount).assumingMemoryBound(to: UInt.self)
            var offset = 0
            for (index, row) in rows.enumerated() {
                if !Self.isNull(row[column]), case .bytes(let bytes, _) = try ParameterValue(row[column]) {
                    bytes.copy(to: data + offset)
                    pointers[index] = data + offset
                    lengths[index] = UInt(bytes.count)
                    indicators[index] = CChar(STMT_INDICATOR_NONE.rawValue)
                    offset += bytes.count
                } else {
                    pointers[index] = nil
                    lengths[index] = 0
                    indicators[index] = CChar(STMT_INDICATOR_NULL.rawValue)
                }
            }
            binds[column].buffer = UnsafeMutableRawPointer(pointers)
            binds[column].length = lengths
        }
        return true
    }
}

extension MariaDBConnection {
    /// Rows per bulk execution: one `COM_STMT_BULK_EXECUTE` each, well inside `max_allowed_packet` for small rows.
    static let bulkChunk = 10_000

    /// Why the bulk path handed a batch back to the row-by-row one.
    enum BulkOutcome {
        case done([SQLExecution])
        /// The rows cannot go in bulk, or their reports or failing row are not known from the
        /// totals: the frame is undone and the batch runs again a row at a time.
        case runRowByRow
    }

    /// Whether `sql` is an `INSERT` or `REPLACE`, whose rows each affect 0, 1 or 2 rows,
    /// so that a bulk total of 0, n or 2n tells every row's count.
    static func suitsBulk(_ sql: String) -> Bool {
        let word = sql.drop(while: { $0.isWhitespace || $0 == "(" }).prefix(7).uppercased()
        guard word.hasPrefix("INSERT") || word.hasPrefix("REPLACE") else { return false }
        // INSERT IGNORE … ON DUPLICATE KEY UPDATE can make 0 and 2 in one batch, which sum like 1 and 1.
        let upper = sql.uppercased()
        return !(upper.contains("IGNORE") && upper.contains("DUPLICATE"))
    }

    /// Runs the rows in chunks through Connector/C's bulk execution; what it cannot
    /// report exactly (a failing row, a mix of per-row counts) it leaves to the row-by-row path.
    func runBulk(_ handle: PreparedHandle, _ batch: [[SQLValue]], fresh: () -> CallBudget) async throws(SQLError) -> BulkOutcome {
        let statement = handle.statement
        var reports: [SQLExecution] = []
        reports.reserveCapacity(batch.count)
        var start = batch.startIndex
        while start < batch.endIndex {
            let end = min(start + Self.bulkChunk, batch.endIndex)
            let rows = batch[start..<end]
            guard rows.allSatisfy({ $0.count == handle.parameterCount }),
                  let binds = try BulkBinds(rows, columns: handle.parameterCount) else { return .runRowByRow }
            var size = UInt32(rows.count)
            mysql_stmt_attr_set(statement, STMT_ATTR_ARRAY_SIZE, &size)
            defer {
                var single: UInt32 = 0
                mysql_stmt_attr_set(statement, STMT_ATTR_ARRAY_SIZE, &single)
            }
            guard mysql_stmt_bind_param(statement, binds.binds) == 0 else { return .runRowByRow }
            var result: Int32 = 0
            var budget = fresh()
            try await call(&budget) { mysql_stmt_execute_start(&result, statement) } resume: { mysql_stmt_execute_cont(&result, statement, $0) }
            withExtendedLifetime(binds) {}
            guard result == 0 else { return .runRowByRow }
            let total = Int(clamping: mysql_stmt_affected_rows(statement))
            guard total % rows.count == 0, total / rows.count <= 2 else { return .runRowByRow }
            let firstID = mysql_stmt_insert_id(statement)
            for index in 0..<rows.count {
                // The server names the first generated id only; the others are not certain (Galera interleaves).
                let id: Int64? = index == 0 && firstID != 0 ? Int64(clamping: firstID) : nil
                reports.append(SQLExecution(rowsAffected: total / rows.count, lastInsertID: id))
            }
            start = end
        }
        return .done(reports)
    }
}

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

    /// The binds for `rows` (each `columns` long), or `nil` when a column mixes types
    /// or a value cannot be bound (the row-by-row path then names the row).
    init?(_ rows: ArraySlice<[SQLValue]>, columns: Int) {
        rowCount = rows.count
        binds = .allocate(capacity: max(columns, 1))
        binds.initialize(repeating: MYSQL_BIND(), count: max(columns, 1))
        for column in 0..<columns {
            do throws(SQLError) {
                guard try fill(column, rows) else { return nil }
            } catch {
                return nil
            }
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
            let isTime = type == MYSQL_TYPE_DATE || type == MYSQL_TYPE_DATETIME
            let size = type == MYSQL_TYPE_TINY ? 1 : isTime ? MemoryLayout<MYSQL_TIME>.stride : 8
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
            if isTime {
                // Connector/C reads a bulk column of a type without a fixed packed length
                // (dates, times) as an array of pointers, one per row.
                let pointers = allocate(MemoryLayout<UnsafeMutableRawPointer?>.stride * rowCount)
                    .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
                for index in 0..<rowCount { pointers[index] = values + index * size }
                binds[column].buffer = UnsafeMutableRawPointer(pointers)
            } else {
                binds[column].buffer = values
            }
            binds[column].buffer_length = UInt(size)
        default:
            var total = 0
            for row in rows where !Self.isNull(row[column]) {
                guard case .bytes(let bytes, let t) = try ParameterValue(row[column]), t == type else { return false }
                total += bytes.count
            }
            let data = allocate(total)
            let pointers = allocate(MemoryLayout<UnsafeMutableRawPointer?>.stride * rowCount).assumingMemoryBound(
                to: UnsafeMutableRawPointer?.self)
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
    /// Rows per bulk execution at most: one `COM_STMT_BULK_EXECUTE` each.
    static let bulkChunk = 10_000
    /// Parameter bytes per bulk execution at most, well inside the server's
    /// `max_allowed_packet` (16 MiB by default; 1 MiB at the smallest MySQL allows by default).
    static let bulkChunkBytes = 768 * 1024

    /// What the bulk path made of a batch.
    enum BulkOutcome {
        case done([SQLExecution])
        /// The rows cannot go in bulk, or their reports are not known from the totals:
        /// nothing was sent that needs undoing beyond the frame, run them a row at a time.
        case runRowByRow
        /// A chunk failed with a statement error: undo, and run a row at a time to name the row.
        case failed(SQLError)
    }

    /// Whether `sql` is an `INSERT … VALUES (…)` of one row per execution (no
    /// `SELECT`, no `REPLACE`, one tuple): each execution then affects 0 or 1
    /// row (`IGNORE`) or 1 or 2 (`ON DUPLICATE KEY UPDATE`, rows matched), so a
    /// chunk's total of 0, n or 2n tells every row's count.
    static func suitsBulk(_ sql: String) -> Bool {
        let upper = sql.uppercased()
        guard upper.drop(while: \.isWhitespace).hasPrefix("INSERT"), !upper.contains("SELECT"),
            let values = upper.range(of: "VALUES")
        else { return false }
        // INSERT IGNORE … ON DUPLICATE KEY UPDATE can make 0 and 2 in one chunk, which sum like 1 and 1.
        if upper.contains("IGNORE"), upper.contains("DUPLICATE") { return false }
        // Exactly one parenthesised tuple after VALUES.
        var depth = 0
        var tuples = 0
        var quote: Character?
        for character in upper[values.upperBound...] {
            if let open = quote {
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "'", "\"", "`": quote = character
            case "(":
                if depth == 0 { tuples += 1 }
                depth += 1
            case ")": depth -= 1
            case "," where depth == 0: return false
            default:
                if depth == 0, !character.isWhitespace { return tuples == 1 }
            }
        }
        return tuples == 1
    }

    /// The end of the chunk that starts at `start`: at most ``bulkChunk`` rows and about ``bulkChunkBytes``.
    private static func chunkEnd(_ batch: [[SQLValue]], from start: Int) -> Int {
        var bytes = 0
        var end = start
        while end < batch.endIndex, end - start < bulkChunk {
            for value in batch[end] {
                switch value {
                case .text(let v): bytes += v.utf8.count + 9
                case .blob(let v): bytes += v.count + 9
                case .decimal(let v): bytes += v.text.utf8.count + 9
                default: bytes += 16
                }
            }
            end += 1
            if bytes >= bulkChunkBytes { break }
        }
        return end
    }

    /// Runs the rows in chunks through Connector/C's bulk execution.
    func runBulk(_ handle: PreparedHandle, _ batch: [[SQLValue]], fresh: () -> CallBudget) async throws(SQLError) -> BulkOutcome {
        let statement = handle.statement
        guard batch.allSatisfy({ $0.count == handle.parameterCount }) else { return .runRowByRow }
        var reports: [SQLExecution] = []
        reports.reserveCapacity(batch.count)
        var start = batch.startIndex
        while start < batch.endIndex {
            if Task.isCancelled { return .failed(SQLError(.cancelled, message: "cancelled during a batch", backend: "mariadb")) }
            let end = Self.chunkEnd(batch, from: start)
            let rows = batch[start..<end]
            guard let binds = BulkBinds(rows, columns: handle.parameterCount) else { return .runRowByRow }
            var size = UInt32(rows.count)
            mysql_stmt_attr_set(statement, STMT_ATTR_ARRAY_SIZE, &size)
            defer {
                var single: UInt32 = 0
                mysql_stmt_attr_set(statement, STMT_ATTR_ARRAY_SIZE, &single)
            }
            guard mysql_stmt_bind_param(statement, binds.binds) == 0 else { return .runRowByRow }
            var result: Int32 = 0
            var budget = fresh()
            try await call(&budget) {
                mysql_stmt_execute_start(&result, statement)
            } resume: {
                mysql_stmt_execute_cont(&result, statement, $0)
            }
            withExtendedLifetime(binds) {}
            guard result == 0 else { return .failed(MariaDBErrors.error(statement)) }
            let total = Int(clamping: mysql_stmt_affected_rows(statement))
            guard total == 0 || total == rows.count || total == 2 * rows.count else { return .runRowByRow }
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

/// The column names of a result, shared by all its rows.
public final class SQLColumns: Sendable {
    /// Column names in result order (duplicates allowed, as SQL allows them).
    public let names: [String]
    /// Built only for wide results: below this many columns a scan is as quick, and a result costs no dictionary.
    private let firstIndexByName: [String: Int]?
    private static let indexedFrom = 12

    /// Creates the column list; lookups by name find the first column of that name.
    public init(_ names: [String]) {
        self.names = names
        guard names.count >= Self.indexedFrom else {
            firstIndexByName = nil
            return
        }
        var index: [String: Int] = [:]
        for (i, name) in names.enumerated() where index[name] == nil { index[name] = i }
        self.firstIndexByName = index
    }

    /// The number of columns.
    public var count: Int { names.count }

    /// The index of the first column named `name`, matched exactly, then ignoring case.
    public func index(of name: String) -> Int? {
        if let firstIndexByName {
            if let i = firstIndexByName[name] { return i }
        } else if let i = names.firstIndex(of: name) {
            return i
        }
        let lowered = name.lowercased()
        return names.firstIndex { $0.lowercased() == lowered }
    }
}

/// One row of a result: values by column index or name, and typed decoding.
///
/// A row is a view into its result's values, which all rows of a result share
/// (one array for the whole result, not one per row): keeping a row keeps its
/// result's values alive.
public struct SQLRow: Sendable {
    /// The result's columns.
    public let columns: SQLColumns
    /// The values of the whole result (or of this row alone), this row's from `start`.
    private let storage: [SQLValue]
    private let start: Int

    /// Creates a row; `values` must have one entry per column.
    public init(columns: SQLColumns, values: [SQLValue]) {
        precondition(columns.count == values.count, "a row needs one value per column")
        self.init(columns: columns, storage: values, start: 0)
    }

    init(columns: SQLColumns, storage: [SQLValue], start: Int) {
        self.columns = columns
        self.storage = storage
        self.start = start
    }

    /// The values, one per column (a copy: reading by index or name costs none).
    public var values: [SQLValue] { Array(storage[start..<start + columns.count]) }

    /// The number of values (one per column).
    public var count: Int { columns.count }

    /// The value at a column index.
    public subscript(index: Int) -> SQLValue {
        precondition(index >= 0 && index < columns.count, "column index out of range")
        return storage[start + index]
    }

    /// The value of the first column named `name`, or `nil` when there is none.
    public subscript(name: String) -> SQLValue? {
        columns.index(of: name).map { self[$0] }
    }

    /// Decodes the value at a column index.
    public func decode<T: SQLValueConvertible>(_ type: T.Type = T.self, at index: Int) throws(SQLError) -> T {
        guard index >= 0 && index < columns.count else {
            throw SQLError(.columnNotFound, message: "column index \(index) is out of range (\(columns.count) columns)")
        }
        do throws(SQLError) {
            return try T(sqlValue: self[index])
        } catch {
            throw error.inColumn(columns.names[index])
        }
    }

    /// Decodes the value of the column named `name`.
    public func decode<T: SQLValueConvertible>(_ type: T.Type = T.self, column name: String) throws(SQLError) -> T {
        guard let index = columns.index(of: name) else {
            throw SQLError(.columnNotFound, message: "no column named \(name)")
        }
        return try decode(type, at: index)
    }
}

extension SQLError {
    func inColumn(_ name: String) -> SQLError {
        var copy = self
        copy.message += " in column \(name)"
        return copy
    }
}

/// The rows a query returned, with their columns.
///
/// The values of all rows are kept in one array, row after row; a ``SQLRow`` is
/// a view into it.
public struct SQLRows: Sendable, RandomAccessCollection {
    /// The result's columns (known even when there are no rows).
    public let columns: SQLColumns
    private let storage: [SQLValue]
    private let rowCount: Int

    /// Creates a result from rows that have `columns`' shape.
    public init(columns: SQLColumns, rows: [SQLRow]) {
        guard columns.count > 0 else {
            self.init(columns: columns, storage: [], rowCount: rows.count)
            return
        }
        var builder = SQLRowsBuilder(columns: columns, reservingRows: rows.count)
        for row in rows {
            precondition(row.count == columns.count, "every row needs one value per column")
            for index in 0..<row.count { builder.append(row[index]) }
        }
        self = builder.build()
    }

    fileprivate init(columns: SQLColumns, storage: [SQLValue], rowCount: Int) {
        self.columns = columns
        self.storage = storage
        self.rowCount = rowCount
    }

    /// The rows (made on each access: iterate or subscript the result itself to make none).
    public var rows: [SQLRow] { Array(self) }

    /// The first row's position.
    public var startIndex: Int { 0 }
    /// One past the last row.
    public var endIndex: Int { rowCount }
    /// The row at `position`.
    public subscript(position: Int) -> SQLRow {
        precondition(position >= 0 && position < rowCount, "row index out of range")
        return SQLRow(columns: columns, storage: storage, start: position * columns.count)
    }
}

/// Fills an ``SQLRows`` value by value, row after row, in one array: how a backend
/// builds a result without an array per row.
package struct SQLRowsBuilder {
    /// The result's columns.
    package let columns: SQLColumns
    private var storage: [SQLValue] = []

    /// Starts a result of `columns`, with room for `rows` rows when the count is known.
    package init(columns: SQLColumns, reservingRows rows: Int = 0) {
        self.columns = columns
        if rows > 0 { storage.reserveCapacity(rows * columns.count) }
    }

    /// Appends the next value: the rows' values in order, one per column each.
    package mutating func append(_ value: SQLValue) {
        storage.append(value)
    }

    /// The result; every row must be complete.
    package func build() -> SQLRows {
        guard columns.count > 0 else { return SQLRows(columns: columns, storage: [], rowCount: 0) }
        precondition(storage.count % columns.count == 0, "SQLRowsBuilder: the last row is incomplete")
        return SQLRows(columns: columns, storage: storage, rowCount: storage.count / columns.count)
    }
}

/// What a statement that changes data reports.
public struct SQLExecution: Sendable, Hashable {
    /// Rows inserted, updated or deleted by the statement.
    public var rowsAffected: Int
    /// The id generated by the last insert on this connection, where the backend reports one.
    public var lastInsertID: Int64?

    /// Creates an execution report.
    public init(rowsAffected: Int, lastInsertID: Int64?) {
        self.rowsAffected = rowsAffected
        self.lastInsertID = lastInsertID
    }
}

/// Collects every result set of one statement or script, in order, for
/// ``SQLConnection/queryAll(_:_:)``: one ``SQLRows`` per result that has
/// columns. A backend appends to it while it reads the results it would
/// otherwise drop.
package final class SQLResultSets {
    /// The result sets so far.
    package private(set) var sets: [SQLRows] = []

    /// An empty collection.
    package init() {}

    /// Keeps `rows` when it is a result set (it has columns).
    package func append(_ rows: SQLRows) {
        if rows.columns.count > 0 { sets.append(rows) }
    }
}

import ArgumentParser
import ClusterConfig
import ClusterSQL
import SQLCore

/// `clustersql query`: one statement on a node the cluster picks for its target.
struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run one SQL statement on a node the cluster picks (for its target role) and print its result.",
        discussion:
            "Parameters bind to ? placeholders in order; each is text unless it parses as an integer, a decimal number, true/false or NULL."
    )

    @OptionGroup var options: ClusterOptions

    @Flag(name: .long, help: "Print one JSON object per row instead of a table.")
    var json = false

    @Option(name: .long, help: "Run on this node, bypassing the balancer (the local SQLite nodes are separate files, not replicas).")
    var node: String?

    @Argument(help: "The SQL statement.")
    var sql: String

    @Argument(help: "Values for the ? placeholders.")
    var parameters: [String] = []

    func run() async throws {
        try await reportingFailures {
            let connection = try await openConnection()
            do {
                let values = parameters.map(ParameterParser.value)
                let printer = ResultPrinter(json: json)
                if StatementKind.returnsRows(sql) {
                    print(printer.render(try await connection.query(sql, values)), terminator: "")
                } else {
                    print(printer.render(try await connection.execute(sql, values)), terminator: "")
                }
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
        }
    }
}

extension QueryCommand {
    /// A connection on ``node`` when given, else one the cluster picks.
    func openConnection() async throws -> any SQLConnection {
        guard let node else { return try await options.openCluster().driver.connect(to: "") }
        let cluster = try options.selectedCluster()
        guard let chosen = cluster.nodes.first(where: { $0.name == node }) else {
            throw ValidationError(
                "cluster \(cluster.name) has no node \(node) (nodes: \(cluster.nodes.map(\.name).joined(separator: ", ")))")
        }
        do {
            return try await standardRegistry().connect(driver: cluster.driver, dsn: chosen.dsn)
        } catch let error as SQLError {
            throw error.on(node: chosen.name)
        }
    }
}

/// Turns command-line words into bound values.
enum ParameterParser {
    /// `NULL` → null, `true`/`false` → bool, integers → integer, decimals → decimal, else text.
    static func value(_ word: String) -> SQLValue {
        switch word {
        case "NULL", "null": return .null
        case "true": return .bool(true)
        case "false": return .bool(false)
        default:
            if let integer = Int64(word) { return .integer(integer) }
            if word.contains("."), let decimal = SQLDecimal(word) { return .decimal(decimal) }
            return .text(word)
        }
    }
}

/// Whether a statement returns rows (and so is run with `query`) or reports changes (`execute`).
enum StatementKind {
    /// `SELECT`, `WITH`, `VALUES`, `PRAGMA`, `EXPLAIN`, `SHOW`, `DESCRIBE`, or anything with `RETURNING`.
    static func returnsRows(_ sql: String) -> Bool {
        let words = sql.split(whereSeparator: { !$0.isLetter && $0 != "_" }).map { $0.uppercased() }
        guard let first = words.first else { return false }
        if ["SELECT", "WITH", "VALUES", "PRAGMA", "EXPLAIN", "SHOW", "DESCRIBE", "TABLE"].contains(first) { return true }
        return words.contains("RETURNING")
    }
}

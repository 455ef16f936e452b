import ArgumentParser
import ClusterSQL
import Foundation
import SQLCore

/// `clustersql stats`: every node's figures after one check of each.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Check every node of a cluster once, then print the cluster's statistics.",
        discussion:
            "The JSON form uses the clustersql seed's expvar names (FirstInstantiated, Connections, Errors, LastSuccess, LastError, LastErrorMessage) plus the balancer's figures. DSNs are shown with their passwords replaced by ***."
    )

    @OptionGroup var options: ClusterOptions

    @Flag(name: .long, help: "Print the statistics as one JSON document.")
    var json = false

    @Option(name: .long, help: "Show this Redis service of config.toml instead of a cluster (exit 1 when no master is verified).")
    var service: String?

    func run() async throws {
        try await reportingFailures {
            if let service { return try await reportService(service, options: options, json: json) }
            let cluster = try options.openCluster().driver
            await cluster.checkAll()
            let statistics = cluster.statistics()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(statistics), as: UTF8.self))
            } else {
                print(StatisticsTable.render(statistics), terminator: "")
            }
        }
    }
}

/// The cluster's statistics as a table, one row per node.
enum StatisticsTable {
    static func render(_ statistics: ClusterStatistics) -> String {
        let columns = SQLColumns([
            "node", "state", "role", "connections", "statements", "errors", "latency ms", "connect ms", "in flight", "lag",
            "last error",
        ])
        let rows = statistics.nodes.map { node in
            SQLRow(
                columns: columns,
                values: [
                    .text(node.name), .text(node.state.rawValue), .text(node.role.rawValue), .integer(Int64(node.connections)),
                    .integer(Int64(node.statements)), .integer(Int64(node.errors)), milliseconds(node.latencyMilliseconds),
                    milliseconds(node.connectMilliseconds), .integer(Int64(node.inFlight)),
                    .text(node.replicationLag?.description ?? "-"), .text(node.lastErrorMessage ?? "-"),
                ])
        }
        return "cluster \(statistics.cluster)\n" + ResultPrinter(json: false).render(SQLRows(columns: columns, rows: rows))
    }

    /// Milliseconds with two decimals, or `-` when never measured.
    static func milliseconds(_ value: Double?) -> SQLValue {
        value.map { .text(String(format: "%.2f", $0)) } ?? .text("-")
    }
}

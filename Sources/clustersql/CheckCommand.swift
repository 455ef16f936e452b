import ArgumentParser
import ClusterConfig
import ClusterSQL
import SQLCore

/// `clustersql check`: is each node reachable, what is its role, how fast is
/// it, how far behind the writes, and can the cluster serve its target within
/// its replication limits? Exits 1 when it cannot.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Check every node of a cluster (reachable, role, latency, replication lag) or a Redis service; exit 1 when it cannot serve.")

    @OptionGroup var options: ClusterOptions

    @Option(name: .long, help: "The target role to check for (default: the cluster's target in config.toml).")
    var target: TargetRole?

    @Option(name: .long, help: "Check this Redis service of config.toml instead of a cluster: master, replicas, what each sentinel says.")
    var service: String?

    func run() async throws {
        try await reportingFailures {
            if let service { return try await reportService(service, options: options, json: false) }
            let (configuration, cluster) = try options.openCluster()
            let wanted = target ?? configuration.target
            await cluster.checkAll()
            let nodes = cluster.statistics().nodes
            let limits = configuration.replicationLimits
            let columns = SQLColumns(["node", "reachable", "role", "latency ms", "lag", "serves \(wanted)", "error"])
            func reachable(_ node: NodeStatistics) -> Bool { node.state == .up && node.role != .unknown }
            func serves(_ node: NodeStatistics) -> Bool {
                reachable(node) && wanted.accepts(node.role) && limits.violation(by: node.replicationLag) == nil
            }
            func problem(_ node: NodeStatistics) -> String {
                guard reachable(node) else { return node.lastErrorMessage ?? "-" }
                return limits.violation(by: node.replicationLag).map { "lagging: \($0)" } ?? "-"
            }
            let rows = nodes.map { node in
                SQLRow(
                    columns: columns,
                    values: [
                        .text(node.name), .text(reachable(node) ? "yes" : "no"), .text(node.role.rawValue),
                        StatisticsTable.milliseconds(node.latencyMilliseconds), .text(node.replicationLag?.description ?? "-"),
                        .text(serves(node) ? "yes" : "no"), .text(problem(node)),
                    ])
            }
            print(ResultPrinter(json: false).render(SQLRows(columns: columns, rows: rows)), terminator: "")
            let serving = nodes.filter(serves).count
            if serving == 0 {
                print("cluster \(configuration.name): UNUSABLE for target \(wanted): no node serves it")
                throw ExitCode.failure
            }
            print("cluster \(configuration.name): usable for target \(wanted) (\(serving) of \(nodes.count) nodes)")
        }
    }
}

extension TargetRole: ExpressibleByArgument {}

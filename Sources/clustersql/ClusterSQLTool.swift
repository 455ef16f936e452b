import ArgumentParser
import ClusterConfig
import ClusterSQL
import Foundation
import Logging
import MariaDBBackend
import PostgresBackend
import SQLCore
import SQLiteBackend

/// `clustersql`: run statements and workloads against the clusters of `config.toml`.
@main
struct ClusterSQLTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clustersql",
        abstract: "Talk to the SQL clusters described in config.toml.",
        subcommands: [DemoCommand.self, CheckCommand.self, StatsCommand.self, QueryCommand.self])
}

/// Options every command that reads the configuration shares.
struct ClusterOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file (default: $CLUSTERSQL_CONFIG, else ./config.toml).")
    var config: String?

    @Option(name: .long, help: "The cluster to use (default: the file's default_cluster).")
    var cluster: String?

    @Option(name: .long, help: "Log messages at this level and above go to standard error (trace ... critical).")
    var logLevel: Logger.Level = .error

    /// A logger to standard error at ``logLevel``.
    var logger: Logger {
        var logger = Logger(label: "clustersql", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = logLevel
        return logger
    }

    /// The selected cluster and a `ClusterDriver` over its nodes.
    func openCluster() throws -> (configuration: ClusterConfiguration, driver: ClusterDriver) {
        let configuration = try selectedCluster()
        return (configuration, try configuration.makeClusterDriver(registry: standardRegistry(), logger: logger))
    }

    /// Loads the configuration and picks the cluster.
    func selectedCluster() throws -> ClusterConfiguration {
        let configuration = try ConfigurationLoader.load(path: ConfigurationLoader.resolvePath(explicit: config))
        let selected = try configuration.cluster(named: cluster)
        if selected.driver == "sqlite" {
            // SQLite creates files, not folders: make the data folder the nodes live in.
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        }
        return selected
    }
}

/// The drivers this build of the tool links.
func standardRegistry() throws -> SQLDriverRegistry {
    let registry = SQLDriverRegistry()
    try registry.register(SQLiteDriver(), as: "sqlite")
    try registry.register(PostgresDriver(), as: "postgres")
    try registry.register(MariaDBDriver(), as: "mariadb")
    return registry
}

/// Runs `body`; any error becomes one line on standard error and exit status 1.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        let line = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("clustersql: \(line)\n".utf8))
        throw ExitCode.failure
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

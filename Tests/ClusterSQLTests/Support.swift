import ClusterSQL
import ConnectionKit
import FaultInjection
import Foundation
import Logging
import MariaDBBackend
import SQLCore
import SQLiteBackend
import ServiceLifecycle
import Testing

/// Three SQLite nodes in a temporary folder, each behind its own fault-injecting driver.
final class LocalCluster: Sendable {
    let folder: URL
    let drivers: [String: FaultInjectingDriver]
    let cluster: ClusterDriver

    /// Three nodes (or `nodes`) whose cluster and fault-injecting drivers run on `clock`; `replicationProbes`
    /// gives nodes a probe by name (the driver's by default).
    init(
        strategy: BalancingStrategy = .latency, nodes: [String] = ["n1", "n2", "n3"], clock: AnyClock = .continuous,
        replicationProbes: [String: ReplicationProbe] = [:],
        configure: (inout ClusterDriverConfiguration) -> Void = { _ in }
    ) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = ClusterDriverConfiguration(name: "test")
        configuration.strategy = strategy
        configure(&configuration)
        cluster = ClusterDriver(
            configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), clock: clock)
        var drivers: [String: FaultInjectingDriver] = [:]
        for name in nodes {
            let driver = FaultInjectingDriver(wrapping: SQLiteDriver(), clock: clock)
            drivers[name] = driver
            try cluster.addNode(
                name: name, driver: driver, dsn: Self.dsn(of: name, in: folder), replicationProbe: replicationProbes[name])
        }
        self.drivers = drivers
    }

    static func dsn(of node: String, in folder: URL) -> String {
        folder.appendingPathComponent("\(node).sqlite").path + "?busy_timeout=5000"
    }

    func dsn(of node: String) -> String { Self.dsn(of: node, in: folder) }

    /// Opens `node`'s file directly, bypassing the cluster.
    func direct(_ node: String) async throws -> any SQLConnection { try await SQLiteDriver().connect(to: dsn(of: node)) }

    func node(_ name: String) -> NodeStatistics { cluster.statistics().nodes.first { $0.name == name }! }

    deinit { try? FileManager.default.removeItem(at: folder) }
}

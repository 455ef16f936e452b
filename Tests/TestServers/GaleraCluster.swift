import Foundation
import TestSupport

/// A real three-node MariaDB Galera cluster on 127.0.0.1 (13 to 16 s to start:
/// each joiner copies the data by rsync).
///
/// Failure detection is faster than Galera's defaults (a dead node is evicted
/// in about 3 to 5 s instead of about 6 s) but not as tight as it could be on
/// an idle machine: with a 1 s suspect timeout, a test run that loads both
/// cores made nodes suspect live peers and split the cluster about once in five runs.
public final class GaleraCluster: Sendable {
    /// The nodes; the first bootstrapped the cluster.
    public let nodes: [MariaDBServer]

    init(nodes: [MariaDBServer]) { self.nodes = nodes }

    /// Starts three nodes and waits until every one is Synced in a cluster of 3.
    public static func start() async throws -> GaleraCluster {
        var nodes: [MariaDBServer] = []
        var gcommPorts: [Int] = []
        for index in 1...3 {
            nodes.append(try await MariaDBServer.make(name: "galera-\(index)"))
            gcommPorts.append(try LoopbackPorts.free())
        }
        let addresses = gcommPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        do {
            for (index, node) in nodes.enumerated() {
                let gcomm = gcommPorts[index]
                let options = [
                    "base_host=127.0.0.1", "base_port=\(gcomm)", "ist.recv_addr=127.0.0.1:\(try LoopbackPorts.free())",
                    "gcache.size=32M", "evs.keepalive_period=PT0.5S", "evs.inactive_check_period=PT0.5S",
                    "evs.suspect_timeout=PT3S", "evs.inactive_timeout=PT5S", "evs.install_timeout=PT5S", "gmcast.peer_timeout=PT3S",
                ].joined(separator: ";")
                try node.writeConfiguration(
                    maxConnections: 40,
                    extra: """
                        binlog_format=ROW
                        innodb_autoinc_lock_mode=2
                        wsrep_on=ON
                        wsrep_provider=/usr/lib/galera/libgalera_smm.so
                        wsrep_cluster_name=clustersql-tests
                        wsrep_cluster_address=gcomm://\(addresses)
                        wsrep_node_address=127.0.0.1:\(gcomm)
                        wsrep_sst_method=rsync
                        wsrep_sst_receive_address=127.0.0.1:\(try LoopbackPorts.free())
                        wsrep_provider_options="\(options)"
                        """)
            }
            try await nodes[0].install()
            try await nodes[0].launch(arguments: ["--wsrep-new-cluster"])
            try await nodes[0].createTestUser()
            for node in nodes.dropFirst() {
                try await node.launch(readyTimeout: .seconds(120))  // a full SST by rsync, slow under load
            }
            let cluster = GaleraCluster(nodes: nodes)
            try await cluster.waitUntilSynced()
            return cluster
        } catch {
            let logs = nodes.map { $0.logTail(lines: 15) }.joined(separator: "\n")
            nodes.forEach { $0.destroy() }
            throw TestServerError("\(error)\n\(logs)")
        }
    }

    /// Waits until every running node reports Synced (`wsrep_local_state` 4) in a cluster of `size`.
    public func waitUntilSynced(size: Int = 3, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        for node in nodes where node.processID != nil {
            while true {
                let state = (try? await node.status("wsrep_local_state")) ?? ""
                let members = (try? await node.status("wsrep_cluster_size")) ?? ""
                if state == "4" && members == String(size) { break }
                guard ContinuousClock.now < deadline else {
                    throw TestServerError(
                        "\(node.name) not Synced in a cluster of \(size) (state \(state), size \(members))\n\(node.logTail())")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The cluster shared by the suites of this test process, started on first use.
    public static func shared() async throws -> GaleraCluster {
        try await shared.value()
    }

    private static let shared = StartedOnce { try await GaleraCluster.start() }

    /// Tests that kill or stop nodes of the shared cluster go through ``SharedServerGate/harm(_:)``,
    /// tests that only use it through ``SharedServerGate/use(_:)``, so that no
    /// test sees a node die that another test killed.
    public static let sharedGate = SharedServerGate()

    /// Kills every node and removes their folders.
    public func destroy() {
        nodes.forEach { $0.destroy() }
    }
}

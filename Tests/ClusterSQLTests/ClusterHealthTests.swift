import ClusterSQL
import ConnectionKit
import FaultInjection
import Foundation
import SQLCore
import SQLTestSupport
import TestSupport
import Testing

@Suite("ClusterDriver: ejection, re-admission, retries and removal", .timeLimit(.minutes(2)))
struct ClusterHealthTests {
    // A dead node ejected, skipped and probed back: ClusterTimingTests, on a manual clock.

    @Test("statement errors never eject a node; a lost connection does")
    func statementErrorsDoNotEject() async throws {
        let local = try LocalCluster(nodes: ["n1"])
        let connection = try await local.cluster.connect(to: "")
        for _ in 0..<5 { await expectSQLError(.syntaxError) { try await connection.query("SELEC nonsense") } }
        #expect(local.node("n1").state == .up)
        #expect(connection.isValid)
        local.drivers["n1"]!.faults = .dead
        await expectSQLError(.connectionLost) { try await connection.execute("CREATE TABLE t (v INTEGER)") }
        #expect(local.node("n1").state == .ejected)
        #expect(local.node("n1").lastErrorMessage?.contains("went away") == true)
        #expect(!connection.isValid)
    }

    @Test("a write whose reply is lost is not retried (no double write)")
    func lostWriteSurfaces() async throws {
        let local = try LocalCluster(nodes: ["n1", "n2"])
        try await createLogTables(local)
        let connection = try await local.cluster.connect(to: "")
        let first = try await nodeOf(connection, in: local)
        let other = first == "n1" ? "n2" : "n1"
        local.drivers[first]!.faults.statementFailureRate = 1
        await expectSQLError(.connectionLost) { try await connection.execute("INSERT INTO log VALUES (1)") }
        // The write reached the node once and was not repeated elsewhere.
        #expect(try await local.direct(first).query("SELECT count(*) FROM log")[0][0] == 1)
        #expect(try await local.direct(other).query("SELECT count(*) FROM log")[0][0] == 0)
        await connection.close()
    }

    @Test("with retryReads on, a plain read and a write marked idempotent are retried on another node after a lost reply")
    func readsAndIdempotentWritesRetry() async throws {
        let local = try LocalCluster(nodes: ["n1", "n2"]) { $0.retryReads = true }
        try await createLogTables(local)
        let connection = try await local.cluster.connect(to: "")
        let first = try await nodeOf(connection, in: local)
        let other = first == "n1" ? "n2" : "n1"
        local.drivers[first]!.faults.statementFailureRate = 1
        #expect(try await connection.query("SELECT count(*) FROM log")[0][0] == 0)
        try await ClusterDriver.idempotent { _ = try await connection.execute("INSERT INTO log VALUES (2)") }
        #expect(try await local.direct(other).query("SELECT count(*) FROM log WHERE v = 2")[0][0] == 1)
        #expect(local.node(other).statements == 2)
        await connection.close()
    }

    @Test("by default a read whose reply is lost surfaces: it ran once")
    func readsAreNotRetriedByDefault() async throws {
        let local = try LocalCluster(nodes: ["n1", "n2"])
        #expect(!local.cluster.configuration.retryReads)
        let connection = try await local.cluster.connect(to: "")
        for driver in local.drivers.values { driver.faults.statementFailureRate = 1 }
        await expectSQLError(.connectionLost) { try await connection.query("SELECT 1") }
        #expect(local.cluster.statistics().nodes.map(\.statements).reduce(0, +) == 1)
        await connection.close()
    }

    @Test("a transaction keeps its connection when its node is removed: the work under way finishes")
    func transactionsOutliveRemoval() async throws {
        let local = try LocalCluster(nodes: ["n1", "n2"])
        let connection = try await local.cluster.connect(to: "")
        _ = try await connection.execute("CREATE TABLE IF NOT EXISTS log (v INTEGER)")
        try await connection.begin()
        _ = try await connection.execute("INSERT INTO log VALUES (1)")
        let node = try #require(local.cluster.statistics().nodes.first { $0.statements > 0 }?.name)
        #expect(local.cluster.removeNode(node))
        _ = try await connection.execute("INSERT INTO log VALUES (2)")
        try await connection.commit()
        #expect(try await local.direct(node).query("SELECT count(*) FROM log")[0][0] == 2)
        #expect(!connection.isValid, "out of a transaction, the connection is on a removed node")
        await connection.close()
    }

    @Test("inside a transaction nothing moves: a connection lost mid-transaction fails the transaction")
    func transactionsStayPut() async throws {
        let local = try LocalCluster(nodes: ["n1", "n2"])
        let connection = try await local.cluster.connect(to: "")
        _ = try await connection.execute("CREATE TABLE IF NOT EXISTS log (v INTEGER)")
        try await connection.begin()
        _ = try await connection.execute("INSERT INTO log VALUES (1)")
        let node = try #require(local.cluster.statistics().nodes.first { $0.statements > 0 }?.name)
        local.drivers[node]!.faults = .dead
        await expectSQLError(.connectionLost) { try await connection.execute("INSERT INTO log VALUES (2)") }
        let error = await expectSQLError(.nodeChanged) { try await connection.execute("INSERT INTO log VALUES (3)") }
        #expect(error?.isConnectionError == true)
        try? await connection.rollback()
        local.drivers[node]!.faults = Faults()
        await connection.close()
    }

    @Test("a transaction begun with SQL of its own is known from the backend: it is not moved, nor retried elsewhere")
    func sqlTransactionsStayPut() async throws {
        let local = try LocalCluster(nodes: ["n1", "n2"])
        try await createLogTables(local)
        let connection = try await local.cluster.connect(to: "")
        let first = try await nodeOf(connection, in: local)
        _ = try await connection.execute("BEGIN")
        #expect(connection.transactionStatus == .inTransaction)
        _ = try await connection.execute("INSERT INTO log VALUES (1)")
        local.drivers[first]!.faults = .dead
        await expectSQLError(.connectionLost) {
            try await ClusterDriver.idempotent { try await connection.execute("INSERT INTO log VALUES (2)") }
        }
        local.drivers[first]!.faults = Faults()
        let other = first == "n1" ? "n2" : "n1"
        #expect(try await local.direct(other).query("SELECT count(*) FROM log")[0][0] == 0, "nothing of the transaction ran elsewhere")
        await connection.close()
    }

    @Test("removeNode during a load: no error, in-flight work completes, the node gets no new work")
    func removeUnderLoad() async throws {
        let local = try LocalCluster(strategy: .roundRobin)
        let database = Database(
            driver: local.cluster, dsn: "",
            configuration: {
                var c = DatabaseConfiguration(name: "load")
                c.maxOpen = 6
                return c
            }())
        let failures = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    var failed = 0
                    for _ in 0..<150 {
                        do { _ = try await database.query("SELECT 1") } catch { failed += 1 }
                    }
                    return failed
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(20))
                local.cluster.removeNode("n2")
                return 0
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(local.cluster.nodes() == ["n1", "n3"])
        #expect(local.cluster.statistics().nodes.count == 2)
        await database.close()
        #expect(await eventually(within: .seconds(2)) { local.drivers["n2"]!.openConnections == 0 })
    }
}

/// Creates `log (v INTEGER)` on every node, directly.
func createLogTables(_ local: LocalCluster) async throws {
    for node in local.drivers.keys {
        let direct = try await local.direct(node)
        _ = try await direct.execute("CREATE TABLE log (v INTEGER)")
        await direct.close()
    }
}

/// The node a fresh cluster connection is on: the only one that has run a statement
/// (counting opens would not do: a hedge that also succeeded counts as an open).
func nodeOf(_ connection: any SQLConnection, in local: LocalCluster) async throws -> String {
    _ = try await connection.query("SELECT 1")
    let busy = local.cluster.statistics().nodes.filter { $0.statements > 0 }
    try #require(busy.count == 1)
    return busy[0].name
}

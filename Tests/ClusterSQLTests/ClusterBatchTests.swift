import ClusterSQL
import FaultInjection
import Foundation
import SQLCore
import SQLTestSupport
import Testing

@Suite("ClusterDriver: batches reach the node's connection whole", .timeLimit(.minutes(2)))
struct ClusterBatchTests {
    @Test("a batch runs on the bound node as one statement; a failing row is named, with the node")
    func batchOnNode() async throws {
        let local = try LocalCluster(nodes: ["n1"])
        let connection = try await local.cluster.connect(to: "")
        _ = try await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        let before = local.node("n1").statements
        let reports = try await connection.execute(
            "INSERT INTO t (id, name) VALUES (?, ?)", batch: (1...200).map { [.integer(Int64($0)), "n"] })
        #expect(reports.count == 200)
        #expect(local.node("n1").statements == before + 1, "the batch is one statement on the node, not 200")
        let error = await expectSQLError(.constraintViolation) {
            try await connection.execute("INSERT INTO t (id, name) VALUES (?, ?)", batch: [[201, "a"], [5, "taken"]])
        }
        #expect(error?.batchRow == 1)
        #expect(error?.node == "n1")
        #expect(try await connection.query("SELECT COUNT(*) FROM t")[0][0] == 200)
        await connection.close()
    }
}

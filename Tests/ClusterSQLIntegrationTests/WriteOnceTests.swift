import ClusterSQL
import ConnectionKit
import FaultInjection
import Foundation
import Logging
import MariaDBBackend
import PostgresBackend
import SQLCore
import SQLTestSupport
import TestServers
import Testing

/// What may have reached a server is never sent again unless that is safe, and one bad
/// statement never takes a node out: on real PostgreSQL and MariaDB servers.
///
/// Each cluster has two nodes that are the same database (two names for one DSN), each behind
/// its own fault-injecting driver: a statement run twice, once per node, leaves two rows.
@Suite("Writes run once; statements never eject nodes", .serialized, .timeLimit(.minutes(3)), Deployment.ownServersOnly)
struct WriteOnceTests {
    enum Server: String, CaseIterable, Sendable, CustomStringConvertible {
        case postgres, mariadb
        var description: String { rawValue }

        func driverAndDSN(queryTimeout: Duration? = nil) async throws -> (any SQLDriver, String) {
            switch self {
            case .postgres: (PostgresDriver(queryTimeout: queryTimeout), try await PostgresCluster.shared().primary.dsn)
            case .mariadb: (MariaDBDriver(queryTimeout: queryTimeout), try await MariaDBServer.shared().dsn)
            }
        }

        /// A table of one integer column, `v`, and a function that inserts its argument into it.
        func setUp(_ table: String, on connection: any SQLConnection) async throws {
            switch self {
            case .postgres:
                _ = try await connection.execute("CREATE TABLE \(table) (id serial PRIMARY KEY, v int)")
                _ = try await connection.execute(
                    "CREATE FUNCTION \(table)_write(x int) RETURNS int AS $$ INSERT INTO \(table) (v) VALUES (x) RETURNING v $$ LANGUAGE sql VOLATILE"
                )
            case .mariadb:
                _ = try await connection.execute("CREATE TABLE \(table) (id int AUTO_INCREMENT PRIMARY KEY, v int)")
                _ = try await connection.execute(
                    "CREATE FUNCTION \(table)_write(x INT) RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO \(table) (v) VALUES (x); RETURN x; END"
                )
            }
        }

        func tearDown(_ table: String, on connection: any SQLConnection) async throws {
            _ = try await connection.execute("DROP FUNCTION \(table)_write")
            _ = try await connection.execute("DROP TABLE \(table)")
        }

        /// Statements that write although a reading of their first word would say "read".
        func writingStatements(_ table: String) -> [(value: Int, sql: String)] {
            var statements = [
                (2, "SELECT \(table)_write(2)"),
                (3, "select \(table)_write(3) AS written"),
            ]
            // MariaDB refuses stacked statements in a query (multiStatements is off by default).
            if self == .postgres {
                statements += [
                    (1, "SELECT 1; INSERT INTO \(table) (v) VALUES (1)"),
                    (4, "EXPLAIN (ANALYZE) INSERT INTO \(table) (v) VALUES (4)"),
                    (5, "EXPLAIN ANALYSE INSERT INTO \(table) (v) VALUES (5)"),
                    (6, "explain (analyze, costs off) insert into \(table) (v) values (6)"),
                ]
            }
            return statements
        }
    }

    /// A cluster whose nodes `n1` and `n2` are both the server's database.
    func twoNamesForOne(
        _ server: Server, queryTimeout: Duration? = nil, configure: (inout ClusterDriverConfiguration) -> Void = { _ in }
    ) async throws -> (ClusterDriver, [String: FaultInjectingDriver]) {
        let (driver, dsn) = try await server.driverAndDSN(queryTimeout: queryTimeout)
        var configuration = ClusterDriverConfiguration(name: "write-once")
        configure(&configuration)
        let cluster = ClusterDriver(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        var drivers: [String: FaultInjectingDriver] = [:]
        for name in ["n1", "n2"] {
            let faulty = FaultInjectingDriver(wrapping: driver)
            drivers[name] = faulty
            try cluster.addNode(name: name, driver: faulty, dsn: dsn)
        }
        return (cluster, drivers)
    }

    /// The node the connection's next statement runs on (it runs `SELECT 1` to find out).
    func nodeOf(_ connection: any SQLConnection, in cluster: ClusterDriver) async throws -> String {
        let before = cluster.statistics().nodes.map(\.statements)
        _ = try await connection.query("SELECT 1")
        return try #require(zip(before, cluster.statistics().nodes).first { $0 != $1.statements }?.1.name)
    }

    @Test("after a lost reply, a statement that writes has run exactly once (retryReads off, the default)", arguments: Server.allCases)
    func lostReplyWritesOnce(server: Server) async throws {
        try await expectWritesOnce(server, retryReads: false, statements: { server.writingStatements($0) })
    }

    @Test(
        "with retryReads on, statements whose text shows they write still run once (a function's writes it cannot see)",
        arguments: Server.allCases)
    func heuristicReadsWriteOnce(server: Server) async throws {
        try await expectWritesOnce(
            server, retryReads: true, statements: { table in server.writingStatements(table).filter { !$0.sql.contains("_write") } })
    }

    func expectWritesOnce(_ server: Server, retryReads: Bool, statements: (String) -> [(value: Int, sql: String)]) async throws {
        let (cluster, drivers) = try await twoNamesForOne(server) {
            $0.retryReads = retryReads
            $0.breaker.failureThreshold = 100  // each lost reply is a node failure: the nodes must outlast them all
        }
        let table = "write_once_\(UInt32.random(in: 0...UInt32.max))"
        let connection = try await cluster.connect(to: "")
        try await server.setUp(table, on: connection)
        for (value, sql) in statements(table) {
            // A lost reply gives the connection up: the next statement finds its node anew.
            let node = try await nodeOf(connection, in: cluster)
            drivers[node]!.faults.statementFailureRate = 1
            do {
                _ = try await connection.query(sql)
                Issue.record("\(server): the reply of \(sql) was not lost")
            } catch {
                #expect(error.code == .connectionLost, "\(server): \(sql): \(error)")
            }
            drivers[node]!.faults = Faults()
            let rows = try await connection.query("SELECT COUNT(*) FROM \(table) WHERE v = ?", [.integer(Int64(value))])
            #expect(rows[0][0] == 1, "\(server): \(sql) ran \(rows[0][0]) times")
        }
        try await server.tearDown(table, on: connection)
        await connection.close()
    }

    @Test(
        "70,000 parameters are a statement error: every node stays up, and a transaction on another connection commits",
        arguments: Server.allCases)
    func tooManyParameters(server: Server) async throws {
        let (cluster, _) = try await twoNamesForOne(server) { $0.retryReads = true }
        let table = "poison_\(UInt32.random(in: 0...UInt32.max))"
        let other = try await cluster.connect(to: "")
        _ = try await other.execute("CREATE TABLE \(table) (v int)")
        try await other.begin()
        _ = try await other.execute("INSERT INTO \(table) (v) VALUES (1)")
        let connection = try await cluster.connect(to: "")
        let count = 70_000
        let sql = "SELECT v FROM \(table) WHERE v IN (" + Array(repeating: "?", count: count).joined(separator: ", ") + ")"
        do {
            _ = try await connection.query(sql, (0..<count).map { .integer(Int64($0)) })
            Issue.record("\(server): \(count) parameters were accepted")
        } catch {
            #expect(error.kind == .statement, "\(server): \(error)")
        }
        #expect(connection.isValid)
        #expect(cluster.statistics().nodes.allSatisfy { $0.state == .up }, "\(cluster.statistics().nodes.map(\.state))")
        try await other.commit()
        #expect(try await connection.query("SELECT COUNT(*) FROM \(table)")[0][0] == 1)
        _ = try await connection.execute("DROP TABLE \(table)")
        await other.close()
        await connection.close()
    }

    @Test("a statement past its query timeout ejects no node, and is not run again elsewhere", arguments: Server.allCases)
    func slowStatement(server: Server) async throws {
        let (cluster, _) = try await twoNamesForOne(server, queryTimeout: .milliseconds(300)) { $0.retryReads = true }
        let other = try await cluster.connect(to: "")
        let table = "slow_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await other.execute("CREATE TABLE \(table) (v int)")
        try await other.begin()
        _ = try await other.execute("INSERT INTO \(table) (v) VALUES (1)")
        let connection = try await cluster.connect(to: "")
        let sleep = server == .postgres ? "SELECT pg_sleep(2)" : "SELECT SLEEP(2)"
        let statementsBefore = cluster.statistics().nodes.map(\.statements).reduce(0, +)
        await expectSQLError(.timeout) { _ = try await connection.query(sleep) }
        #expect(cluster.statistics().nodes.map(\.statements).reduce(0, +) == statementsBefore + 1, "run once")
        #expect(cluster.statistics().nodes.allSatisfy { $0.state == .up }, "\(cluster.statistics().nodes.map(\.state))")
        try await other.commit()
        #expect(try await connection.query("SELECT COUNT(*) FROM \(table)")[0][0] == 1)
        _ = try await connection.execute("DROP TABLE \(table)")
        await other.close()
        await connection.close()
    }
}

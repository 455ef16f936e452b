import ClusterSQL
import ConnectionKit
import SQLCore
import SQLTestSupport
import Testing

@testable import ClusterSQL

/// Lag-aware choice over three SQLite nodes whose lag a test sets (a probe per node reads it):
/// the cluster's limits, an open's own, connections moving off a node that falls behind.
@Suite("Replication limits: a node too far behind takes no opens until it catches up", .timeLimit(.minutes(1)))
struct ReplicationLagTests {
    /// The lag each node's probe reports, as the test sets it.
    final class Lags: Sendable {
        private let lags = Locked<[String: ReplicationLag]>([:])
        subscript(node: String) -> ReplicationLag {
            get { lags.withLock { $0[node] ?? .caughtUp } }
            set { lags.withLock { $0[node] = newValue } }
        }
        func probe(_ node: String) -> ReplicationProbe {
            ReplicationProbe { _, _, _ throws(SQLError) in ReplicationReading(lag: self[node]) }
        }
    }

    func makeCluster(_ lags: Lags, limits: ReplicationLimits) throws -> LocalCluster {
        try LocalCluster(
            strategy: .roundRobin, replicationProbes: Dictionary(uniqueKeysWithValues: ["n1", "n2", "n3"].map { ($0, lags.probe($0)) })
        ) {
            $0.replicationLimits = limits
            // These tests are about the limits, not the check's bound: a check of an SQLite file must not time out
            // while the parallel pass starts every suite's servers on two cores.
            $0.checkTimeout = .seconds(30)
        }
    }

    func opens(_ local: LocalCluster, dsn: String = "", count: Int = 30) async throws -> [String: Int] {
        let before = Dictionary(uniqueKeysWithValues: local.cluster.statistics().nodes.map { ($0.name, $0.connections) })
        for _ in 0..<count {
            let connection = try await local.cluster.connect(to: dsn)
            await connection.close()
        }
        return Dictionary(uniqueKeysWithValues: local.cluster.statistics().nodes.map { ($0.name, $0.connections - before[$0.name]!) })
    }

    @Test(
        "a node over the cluster's lag limit gets no opens; an open with a looser limit of its own may use it; caught up, it serves again")
    func lagLimit() async throws {
        let lags = Lags()
        let local = try makeCluster(lags, limits: ReplicationLimits(maxLag: .seconds(1)))
        lags["n2"] = ReplicationLag(seconds: 5, bytesBehind: 4096)
        await local.cluster.checkAll()
        let n2 = local.node("n2")
        #expect(n2.replicationLagSeconds == 5 && n2.bytesBehind == 4096 && n2.replicationLag?.description == "5000 ms, 4096 bytes")
        var counts = try await opens(local)
        #expect(counts["n2"] == 0 && counts["n1"]! > 0 && counts["n3"]! > 0, "\(counts)")
        counts = try await opens(local, dsn: "max_replication_lag=10s")
        #expect(counts["n2"]! > 0, "a looser limit of the open's own admits it: \(counts)")
        counts = try await opens(local, dsn: "target=any&max_replication_lag=500ms")
        #expect(counts["n2"] == 0, "\(counts)")
        lags["n2"] = .caughtUp
        await local.cluster.checkAll()
        counts = try await opens(local)
        #expect(counts["n2"]! > 0, "caught up, it serves again: \(counts)")
    }

    @Test(
        "Galera's apply queue: max_transactions_behind; a node behind by an unknown amount is over every limit; no node fresh enough is a typed error"
    )
    func transactionsBehindAndUnknown() async throws {
        let lags = Lags()
        let local = try makeCluster(lags, limits: ReplicationLimits(maxTransactionsBehind: 10))
        lags["n1"] = ReplicationLag(transactionsBehind: 11)
        lags["n2"] = ReplicationLag(isBehindByUnknown: true)
        lags["n3"] = ReplicationLag(transactionsBehind: 10)
        await local.cluster.checkAll()
        let counts = try await opens(local)
        #expect(counts == ["n1": 0, "n2": 0, "n3": 30], "\(counts)")
        #expect(local.node("n2").isBehindByUnknown && local.node("n1").transactionsBehind == 11)
        lags["n3"] = ReplicationLag(transactionsBehind: 12)
        await local.cluster.checkAll()
        let error = await expectSQLError(.noEligibleNode) { try await local.cluster.connect(to: "") }
        #expect(error?.message.contains("lagging: 12 transaction(s) behind (limit 10)") == true, "\(String(describing: error))")
        #expect(error?.message.contains("behind by an unknown amount") == true, "\(String(describing: error))")
        // Without limits the figures are still measured and shown, and every node serves.
        let counts2 = try await opens(local, dsn: "max_transactions_behind=100")
        #expect(counts2["n2"] == 0 && counts2["n1"]! > 0 && counts2["n3"]! > 0, "\(counts2)")
    }

    @Test("a connection on a node that falls behind moves to a fresh node before its next statement; inside a transaction it stays")
    func connectionMovesOff() async throws {
        let lags = Lags()
        let local = try makeCluster(lags, limits: ReplicationLimits(maxLag: .seconds(1)))
        let connection = try await local.cluster.connect(to: "")
        defer { Task { await connection.close() } }
        func nodeOfLastStatement(_ body: () async throws -> Void) async throws -> String {
            let before = local.cluster.statistics().nodes.map(\.statements)
            try await body()
            let after = local.cluster.statistics().nodes
            return try #require(zip(before, after).first { $0 != $1.statements }?.1.name)
        }
        let first = try await nodeOfLastStatement { _ = try await connection.query("SELECT 1") }
        try await connection.begin()
        lags[first] = ReplicationLag(seconds: 30)
        await local.cluster.checkAll()
        #expect(try await nodeOfLastStatement { _ = try await connection.query("SELECT 2") } == first, "the transaction stays")
        try await connection.commit()
        let next = try await nodeOfLastStatement { _ = try await connection.query("SELECT 3") }
        #expect(next != first, "outside the transaction it moved off the node that fell behind")
    }

    @Test("the cluster DSN: role and limits in any order, spaces or &; bad keys and values are typed errors that echo no password")
    func dsnParsing() throws {
        let defaults = ClusterDriverConfiguration(name: "dsn")
        let request = try OpenRequest(dsn: "standby max_replication_lag=1.5s&max_transactions_behind=0", defaults: defaults)
        #expect(request.target == .standby)
        #expect(request.limits == ReplicationLimits(maxLag: .milliseconds(1500), maxTransactionsBehind: 0))
        #expect(try OpenRequest(dsn: "target_session_attrs=read-only", defaults: defaults).target == .readOnly)
        #expect(try OpenRequest(dsn: "", defaults: defaults) == OpenRequest(target: .any))
        for bad in [
            "max_replication_lag=0s", "max_replication_lag=soon", "max_transactions_behind=-1", "maxlag=1s",
            "postgres://app:s3cret@db/x?sslmode=require", "target=postgres://app:s3cret@db",
        ] {
            #expect(throws: SQLError.self, "\(bad)") { try OpenRequest(dsn: bad, defaults: defaults) }
            do {
                _ = try OpenRequest(dsn: bad, defaults: defaults)
            } catch {
                #expect(error.code == .invalidConfiguration)
                #expect(!error.description.contains("s3cret"), "\(error)")
            }
        }
    }

    @Test("a standby's lag in time, from its replayed position: since the checks first saw a primary past it")
    func writePositionHistory() {
        let manual = ManualClock()
        let clock = AnyClock(manual)
        var history = WritePositionHistory(capacity: 8)
        history.record(100, at: clock.now)
        manual.advance(by: .milliseconds(200))
        history.record(100, at: clock.now)  // unchanged: not a new sample
        history.record(250, at: clock.now)
        manual.advance(by: .milliseconds(300))
        history.record(400, at: clock.now)
        manual.advance(by: .milliseconds(100))
        #expect(history.latest == 400)
        #expect(history.lag(ofReplayed: 400, at: clock.now) == .zero)  // caught up
        #expect(history.lag(ofReplayed: 300, at: clock.now) == .milliseconds(100))  // 400 was seen 100 ms ago
        #expect(history.lag(ofReplayed: 100, at: clock.now) == .milliseconds(400))  // 250 was seen 400 ms ago
        #expect(history.lag(ofReplayed: 0, at: clock.now) == .milliseconds(600))
        for position in 401...420 { history.record(Int64(position), at: clock.now) }  // over capacity: old samples go
        #expect(history.lag(ofReplayed: 0, at: clock.now) == .zero)  // timed from the oldest kept, a lower bound
    }

    @Test(
        "a read-your-writes token travels as text, one position per cluster; a session moves forward unless settled; outside a session nothing changes"
    )
    func tokensAndSessions() async throws {
        let token = try #require(ReplicationToken("pg=50331744,gal%2Cera=7"))
        #expect(token.positions == ["pg": 50_331_744, "gal,era": 7])
        #expect(token.description == "gal%2Cera=7,pg=50331744" && ReplicationToken(token.description) == token)
        for bad in ["", "50331744", "pg=-1", "pg=0/3000060", "=5", "pg=1,=2"] { #expect(ReplicationToken(bad) == nil, "\(bad)") }
        let session = ReadYourWritesSession(after: ReplicationToken(positions: ["pg": 10]))
        session.advance("pg", to: 5)
        session.advance("other", to: 3)
        #expect(session.position(for: "pg") == 10 && session.position(for: "other") == 3)
        session.advance("pg", to: 12)
        session.settle("pg", at: 11)  // its primary has no more: what cannot come is not waited for
        #expect(session.token?.description == "other=3,pg=11")
        // SQLite nodes have no write positions: a session takes no token and waits for nothing.
        let local = try LocalCluster()
        let fresh = ReadYourWritesSession()
        try await ClusterDriver.readingYourWrites(fresh) {
            let connection = try await local.cluster.connect(to: "")
            _ = try await connection.execute("CREATE TABLE t (v INT)")
            _ = try await connection.query("SELECT COUNT(*) FROM t")
            await connection.close()
        }
        #expect(fresh.token == nil)
    }
}

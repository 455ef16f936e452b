import ClusterSQL
import ConnectionKit
import Foundation
import Logging
import PostgresBackend
import SQLCore
import SQLTestSupport
import TestServers
import TestSupport
import Testing

/// ClusterDriver over a real PostgreSQL primary and streaming standby (its own
/// pair: the tests kill and promote).
@Suite("ClusterDriver over PostgreSQL primary and standby", .serialized, .timeLimit(.minutes(3)), Deployment.ownServersOnly)
struct PostgresClusterTests {
    func makeCluster(_ servers: PostgresCluster, configure: (inout ClusterDriverConfiguration) -> Void = { _ in }) throws -> ClusterDriver {
        var configuration = ClusterDriverConfiguration(name: "pg")
        configuration.checkInterval = .milliseconds(200)
        configure(&configuration)
        let cluster = ClusterDriver(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try cluster.addNode(name: "a-primary", driver: PostgresDriver(), dsn: servers.primary.dsn + " connect_timeout=2")
        try cluster.addNode(name: "b-standby", driver: PostgresDriver(), dsn: servers.standbys[0].dsn + " connect_timeout=2")
        return cluster
    }

    @Test(
        "targets reach the right node; after SIGKILL of the primary and promotion, read-write opens reach the new primary within a second and no write reaches a read-only node"
    )
    func failover() async throws {
        let servers = try await PostgresCluster.start(standbys: 1)
        defer { servers.destroy() }
        let cluster = try makeCluster(servers)
        try await whileRunning(cluster) {
            for (target, recovery) in [
                ("read-write", false), ("primary", false), ("read-only", true), ("standby", true), ("prefer-standby", true),
            ] {
                let connection = try await cluster.connect(to: target)
                #expect(try await connection.query("SELECT pg_is_in_recovery()")[0][0] == .bool(recovery), "\(target)")
                await connection.close()
            }
            let writer = try await cluster.connect(to: "read-write")
            _ = try await writer.execute("CREATE TABLE ledger (id serial PRIMARY KEY, v int)")
            await writer.close()
            let database = Database(driver: cluster, dsn: "read-write")
            let readOnlyErrors = Locked(0)
            let written = Locked(0)
            let stop = Locked(false)
            let promoted = Locked<ContinuousClock.Instant?>(nil)
            let firstWriteAfterPromotion = Locked<ContinuousClock.Instant?>(nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !stop.withLock({ $0 }) {
                        do {
                            _ = try await database.execute("INSERT INTO ledger (v) VALUES (?)", [1])
                            written.withLock { $0 += 1 }
                            if promoted.withLock({ $0 }) != nil {
                                firstWriteAfterPromotion.withLock { $0 = $0 ?? .now }
                            }
                        } catch let error as SQLError {
                            if error.code == .readOnly { readOnlyErrors.withLock { $0 += 1 } }
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                try await servers.primary.kill()
                try await servers.standbys[0].promote()
                promoted.withLock { $0 = .now }
                #expect(await eventually(within: .seconds(5)) { firstWriteAfterPromotion.withLock { $0 } != nil })
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
            let gap = try #require(firstWriteAfterPromotion.withLock { $0 }) - promoted.withLock { $0! }
            #expect(gap < .seconds(1), "the first write after promotion came \(gap) later")
            #expect(readOnlyErrors.withLock { $0 } == 0)
            #expect(written.withLock { $0 } > 0)
            let stats = cluster.statistics().nodes
            #expect(stats.first { $0.name == "b-standby" }?.role == .primary)
            #expect(stats.first { $0.name == "a-primary" }?.state != .up)
            await database.close()
        }
    }

    @Test(
        "prefer-standby waits for a slow standby instead of hedging to the primary, and falls back to the primary only when the standby fails"
    )
    func preferStandbyIsNotHedged() async throws {
        let servers = try await PostgresCluster.start(standbys: 1)
        defer { servers.destroy() }
        let proxy = try await DelayProxy.start(upstreamPort: servers.standbys[0].port, delay: .zero)
        var configuration = ClusterDriverConfiguration(name: "pg")
        configuration.checkInterval = .milliseconds(200)
        let cluster = ClusterDriver(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try cluster.addNode(name: "a-primary", driver: PostgresDriver(), dsn: servers.primary.dsn + " connect_timeout=2")
        try cluster.addNode(
            name: "b-standby", driver: PostgresDriver(),
            dsn: "host=127.0.0.1 port=\(proxy.port) user=postgres dbname=postgres connect_timeout=2")
        try await whileRunning(cluster) {
            func inRecovery() async throws -> Bool {
                let connection = try await cluster.connect(to: "prefer-standby")
                defer { Task { await connection.close() } }
                return try await connection.query("SELECT pg_is_in_recovery()")[0][0] == .bool(true)
            }
            // Both roles known, then every round trip to the standby 40 ms slower:
            // a connect to it takes several hedge delays.
            let standby = try await cluster.connect(to: "standby")
            await standby.close()
            proxy.delay = .milliseconds(40)
            for _ in 0..<5 {
                #expect(try await inRecovery(), "prefer-standby reached the primary while the standby was only slow")
            }
            await proxy.stop()  // the standby unreachable: now the primary serves
            #expect(try await inRecovery() == false)
        }
    }

    @Test(
        "a standby whose replay is paused falls behind the lag limit: standby reads fail typed, prefer-standby reads go to the primary; resumed, it serves again"
    )
    func lagAwareReads() async throws {
        let servers = try await PostgresCluster.start(standbys: 1)
        defer { servers.destroy() }
        let cluster = try makeCluster(servers) {
            $0.checkInterval = .milliseconds(100)
            $0.replicationLimits = ReplicationLimits(maxLag: .milliseconds(500))
        }
        @Sendable func standby() -> NodeStatistics { cluster.statistics().nodes[1] }
        try await whileRunning(cluster) {
            let writer = try await cluster.connect(to: "read-write")
            _ = try await writer.execute("CREATE TABLE fresh (id int)")
            let direct = try await PostgresDriver().connect(to: servers.standbys[0].dsn)
            #expect(
                await eventually(within: .seconds(10)) {
                    (try? await direct.query("SELECT to_regclass('fresh') IS NOT NULL")[0][0]) == .bool(true)
                        && standby().replicationLagSeconds == 0
                })
            _ = try await direct.query("SELECT pg_wal_replay_pause()")
            _ = try await writer.execute("INSERT INTO fresh VALUES (1)")
            #expect(await eventually(within: .seconds(10)) { (standby().replicationLagSeconds ?? 0) > 0.5 }, "\(standby())")
            #expect((standby().bytesBehind ?? 0) > 0)
            let error = await expectSQLError(.noEligibleNode) { try await cluster.connect(to: "standby") }
            #expect(error?.message.contains("lagging") == true, "\(String(describing: error))")
            let preferring = try await cluster.connect(to: "prefer-standby")
            #expect(try await preferring.query("SELECT pg_is_in_recovery(), count(*) FROM fresh")[0].values == [.bool(false), .integer(1)])
            await preferring.close()
            // An open that accepts an hour of lag still reads the standby, and sees it stale.
            let tolerant = try await cluster.connect(to: "standby max_replication_lag=1h")
            #expect(try await tolerant.query("SELECT pg_is_in_recovery(), count(*) FROM fresh")[0].values == [.bool(true), .integer(0)])
            await tolerant.close()
            _ = try await direct.query("SELECT pg_wal_replay_resume()")
            await direct.close()
            #expect(await eventually(within: .seconds(10)) { standby().replicationLagSeconds == 0 }, "\(standby())")
            let caughtUp = try await cluster.connect(to: "standby")
            #expect(try await caughtUp.query("SELECT pg_is_in_recovery(), count(*) FROM fresh")[0].values == [.bool(true), .integer(1)])
            await caughtUp.close()
            await writer.close()
        }
    }

    @Test(
        "read-your-writes: reads in the session wait for the standby to replay the session's writes; with replay paused they move to the primary after the timeout"
    )
    func readYourWritesFallback() async throws {
        let servers = try await PostgresCluster.start(standbys: 1)
        defer { servers.destroy() }
        let cluster = try makeCluster(servers)
        let writes = Database(driver: cluster, dsn: "read-write")
        let reads = Database(driver: cluster, dsn: "standby")
        _ = try await writes.execute("CREATE TABLE seen (id int)")
        let session = ReadYourWritesSession()
        try await ClusterDriver.readingYourWrites(session) {
            for id in 1...100 {
                _ = try await writes.execute("INSERT INTO seen VALUES (?)", [.integer(Int64(id))])
                // On the standby once it replayed the write (or, on a slow machine, the primary after 1 s): never missed.
                let row = try await reads.query("SELECT count(*) FROM seen WHERE id = ?", [.integer(Int64(id))])[0]
                #expect(row[0] == .integer(1), "read \(id) saw its write")
            }
        }
        let token = try #require(session.token)
        #expect(ReplicationToken(token.description) == token && token.positions.keys.sorted() == ["pg"])
        let direct = try await PostgresDriver().connect(to: servers.standbys[0].dsn)
        _ = try await direct.query("SELECT pg_wal_replay_pause()")
        // A later request carries the token as text: a fresh session starts from it.
        let carried = ReadYourWritesSession(after: ReplicationToken(token.description))
        try await ClusterDriver.readingYourWrites(carried) {
            _ = try await writes.execute("INSERT INTO seen VALUES (1000)")
            let started = ContinuousClock.now
            let row = try await reads.query("SELECT pg_is_in_recovery(), count(*) FROM seen WHERE id = 1000")[0]
            #expect(row.values == [.bool(false), .integer(1)], "served by the primary once the standby did not catch up")
            #expect(ContinuousClock.now - started >= .seconds(1))  // readYourWritesTimeout
        }
        #expect(
            try await reads.query("SELECT count(*) FROM seen WHERE id = 1000")[0][0] == .integer(0),
            "outside the session: the stale standby")
        // A timeout shorter than one read of the position: the read in flight is not cancelled
        // (that would give the connection up and fail the statement); the primary serves.
        let hasty = try makeCluster(servers) { $0.readYourWritesTimeout = .microseconds(20) }
        let hastyReads = Database(driver: hasty, dsn: "standby")
        try await ClusterDriver.readingYourWrites(ReadYourWritesSession(after: carried.token)) {
            for _ in 1...5 {
                let row = try await hastyReads.query("SELECT pg_is_in_recovery(), count(*) FROM seen WHERE id = 1000")[0]
                #expect(row.values == [.bool(false), .integer(1)])
            }
        }
        await hastyReads.close()
        _ = try await direct.query("SELECT pg_wal_replay_resume()")
        await direct.close()
        await reads.close()
        await writes.close()
    }

    @Test(
        "SIGSTOP of the primary under run(): the checks eject it, a statement on a connection to it fails within the liveness bound, close() returns, reads go on"
    )
    func stoppedPrimary() async throws {
        let servers = try await PostgresCluster.start(standbys: 1)
        defer { servers.destroy() }
        var configuration = ClusterDriverConfiguration(name: "pg-stopped")
        configuration.checkInterval = .milliseconds(200)
        let cluster = ClusterDriver(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        // A liveness interval of 1 s rather than the default 10 s, to keep the test short.
        let driver = PostgresDriver(livenessCheckAfter: .seconds(1))
        try cluster.addNode(name: "a-primary", driver: driver, dsn: servers.primary.dsn + " connect_timeout=2")
        try cluster.addNode(name: "b-standby", driver: driver, dsn: servers.standbys[0].dsn + " connect_timeout=2")
        try await whileRunning(cluster) {
            let connection = try await cluster.connect(to: "read-write")
            #expect(try await connection.query("SELECT pg_is_in_recovery()")[0][0] == .bool(false))
            await servers.primary.pause()
            defer { servers.primary.resume() }
            let started = ContinuousClock.now
            do {
                _ = try await connection.query("SELECT 1")
                Issue.record("a stopped primary answered")
            } catch {
                #expect((error as? SQLError)?.kind == .connection, "\(error)")
            }
            // 1 s of silence, then a check of at most 5 s (ServerLiveness.checkTimeout).
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(9)))
            let ejected = await eventually(within: .seconds(10)) {
                cluster.statistics().nodes.first { $0.name == "a-primary" }?.state != .up
            }
            #expect(ejected, "the checks ejected the stopped primary")
            let closing = ContinuousClock.now
            await connection.close()
            #expect(ContinuousClock.now - closing < TestTiming.bound(.seconds(2)))
            let reader = try await cluster.connect(to: "prefer-standby")
            #expect(try await reader.query("SELECT pg_is_in_recovery()")[0][0] == .bool(true), "reads go on on the standby")
            await reader.close()
        }
    }
}

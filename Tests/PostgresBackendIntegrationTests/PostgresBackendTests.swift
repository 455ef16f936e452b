import Foundation
import SQLCore
import SQLTestSupport
import TestServers
import TestSupport
import Testing

@testable import PostgresBackend

/// PostgresBackend against a real PostgreSQL primary started by TestServers.
@Suite("PostgreSQL backend", .timeLimit(.minutes(3)))
struct PostgresBackendTests {
    func connect(_ dsn: String? = nil, queryTimeout: Duration? = nil) async throws -> any SQLConnection {
        let server = try await PostgresCluster.shared().primary
        return try await PostgresDriver(queryTimeout: queryTimeout).connect(to: dsn ?? server.dsn)
    }

    @Test("the clustersql seed's scenario, with ? placeholders and rows affected")
    func seedScenario() async throws {
        let db = try await connect()
        let table = "seed_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await db.execute("DROP TABLE IF EXISTS \(table)")
        _ = try await db.execute("CREATE TABLE \(table) (id serial PRIMARY KEY, name text)")
        #expect(try await db.query("SELECT * FROM \(table)").isEmpty)
        #expect(try await db.execute("INSERT INTO \(table) (name) VALUES (?), (?)", ["one", "two"]).rowsAffected == 2)
        let ids = try await db.query("INSERT INTO \(table) (name) VALUES (?) RETURNING id", ["three"])
        #expect(ids[0][0] == 3)
        let rows = try await db.query("SELECT name FROM \(table) WHERE id >= ? ORDER BY id", [2])
        #expect(rows.map { $0[0] } == ["two", "three"])
        #expect(try await db.execute("UPDATE \(table) SET name = ? WHERE id = ?", ["uno", 1]).rowsAffected == 1)
        #expect(try await db.execute("DELETE FROM \(table) WHERE id = ?", [2]).rowsAffected == 1)
        #expect(try await db.execute("DELETE FROM \(table) WHERE id = ?", [2]).rowsAffected == 0)
        _ = try await db.execute("DROP TABLE \(table)")
        await db.close()
    }

    @Test("every type round-trips exactly")
    func types() async throws {
        let db = try await connect()
        let stamp = SQLTimestamp(microsecondsSinceEpoch: 1_700_000_000_123_456)
        let cases: [(String, SQLValue)] = [
            ("int2", .integer(-32768)), ("int4", .integer(2_147_483_647)), ("int8", .integer(.min)), ("int8", .integer(.max)),
            ("float8", .double(1.5e-300)), ("float8", .double(.infinity)), ("float8", .double(-.infinity)), ("float8", .double(.nan)),
            ("float4", .double(0.5)),
            ("numeric", .decimal(SQLDecimal("123456789012345678901234567890.000000000000000000001")!)),
            ("bool", .bool(true)), ("bool", .bool(false)),
            ("text", .text("héllo ✓ 'quoted' \"double\" \\ back")), ("varchar(10)", .text("short")), ("text", .text("")),
            ("bytea", .blob([])), ("bytea", .blob([0, 13, 10, 0, 255])), ("bytea", .blob(Array(0...255))),
            ("date", .date(SQLDate("2024-02-29")!)), ("timestamp", .timestamp(stamp)), ("timestamptz", .timestamp(stamp)),
        ]
        for (type, value) in cases {
            let back = try await db.query("SELECT CAST(? AS \(type))", [value])[0][0]
            #expect(back.isSameValue(as: value), "\(type): got \(back)")
        }
        let uuid = UUID()
        #expect(try await db.query("SELECT CAST(? AS uuid)", [uuid.sqlValue])[0][0] == uuid.sqlValue)
        let json = try await db.query("SELECT CAST(? AS jsonb) -> 'a'", ["{\"a\": [1, 2]}"])[0][0]
        #expect(json == .text("[1, 2]"))
        #expect(try await db.query("SELECT CAST(? AS int)", [nil])[0][0] == .null)
        #expect(try await db.query("SELECT '{\"k\": 1}'::jsonb ?? 'k'")[0][0] == .bool(true))  // ?? is jsonb's ? operator
        await expectSQLError(.typeMismatch) { _ = try await db.query("SELECT CAST(? AS text)", ["a\u{0}b"]) }
        await db.close()
    }

    @Test("a syntax error is statement-class with its SQLSTATE; the connection stays usable")
    func statementErrors() async throws {
        let db = try await connect()
        let syntax = await expectSQLError(.syntaxError) { _ = try await db.query("SELEKT 1") }
        #expect(syntax?.sqlState == "42601")
        #expect(syntax?.kind == .statement)
        let table = "uniq_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await db.execute("CREATE TEMP TABLE \(table) (id int PRIMARY KEY)")
        _ = try await db.execute("INSERT INTO \(table) VALUES (?)", [1])
        let duplicate = await expectSQLError(.constraintViolation) { _ = try await db.execute("INSERT INTO \(table) VALUES (?)", [1]) }
        #expect(duplicate?.sqlState == "23505")
        #expect(duplicate?.detail?.contains("already exists") == true)
        #expect(duplicate.map { !$0.description.contains("(id)=(1)") } == true)  // row data stays in detail
        await expectSQLError(.parameterCountMismatch) { _ = try await db.query("SELECT ?, ?", [1]) }
        #expect(db.isValid)
        #expect(try await db.query("SELECT 1")[0][0] == 1)
        await db.close()
    }

    @Test("notices go to the logger, never to stderr; no log line holds a password")
    func logging() async throws {
        let capture = LogCapture()
        let driver = PostgresDriver(logger: capture.logger())
        let server = try await PostgresCluster.shared().primary
        let db = try await driver.connect(to: server.dsn)
        _ = try await db.execute("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$")
        #expect(capture.all.contains { $0.contains("postgres notice") && $0.contains("hello from plpgsql") })
        await db.close()
        let closedPort = try LoopbackPorts.free()
        _ = try? await driver.connect(to: "host=127.0.0.1 port=\(closedPort) user=app password=hunter2-secret")
        _ = try? await driver.connect(to: "postgres://app:hunter2-secret@127.0.0.1:\(closedPort)/db")
        #expect(capture.all.filter { $0.contains("connect failed") }.count == 2)
        #expect(!capture.all.contains { $0.contains("hunter2") }, "\(capture.all)")
    }

    @Test("bad inputs are typed errors, and a password never shows")
    func badInputs() async throws {
        await expectSQLError(.invalidConfiguration) { _ = try await PostgresDriver().connect(to: "host=127.0.0.1 bogus_key=1") }
        await expectSQLError(.invalidConfiguration) { _ = try await PostgresDriver().connect(to: "postgres://[broken") }
        let closedPort = try LoopbackPorts.free()
        let refused = await expectSQLError(.connectionFailed) {
            _ = try await PostgresDriver().connect(to: "host=127.0.0.1 port=\(closedPort) user=app password=hunter2-secret")
        }
        #expect(refused.map { !$0.description.contains("hunter2") } == true)
        #expect(refused?.kind == .connection)
        await expectSQLError(.connectionFailed) {
            _ = try await PostgresDriver().connect(to: "host=no-such-host.invalid port=5432 user=app")
        }
        let server = try await PostgresCluster.shared().primary
        await expectSQLError(.connectionFailed) {
            _ = try await PostgresDriver().connect(
                to: "\(server.dsn.replacingOccurrences(of: "dbname=postgres", with: "dbname=missing_db"))")
        }
    }
}

extension PostgresBackendTests {
    @Test("a DSN's connect_timeout bounds a connect to a port that accepts but never speaks; names resolve before libpq sees them")
    func connectTimeoutAndNames() async throws {
        let listener = try SilentListener()  // the kernel completes the handshake, nobody speaks
        defer { withExtendedLifetime(listener) {} }  // listening until the test ends
        let port = listener.port
        let started = ContinuousClock.now
        await expectSQLError(.timeout) {
            _ = try await PostgresDriver(connectTimeout: .seconds(10)).connect(to: "host=127.0.0.1 port=\(port) user=app connect_timeout=2")
        }
        let waited = started.duration(to: .now)
        #expect(waited >= .seconds(2) && waited < .seconds(5), "waited \(waited), not the DSN's 2 s")

        let server = try await PostgresCluster.shared().primary
        let byName = try await PostgresDriver().connect(to: "host=localhost port=\(server.port) user=postgres dbname=postgres")
        #expect(try await byName.query("SELECT 1")[0][0] == 1)
        await byName.close()
        await expectSQLError(.invalidConfiguration) { _ = try await PostgresDriver().connect(to: "host=127.0.0.1 connect_timeout=soon") }
    }
}

@Suite("PostgreSQL host resolution")
struct PostgresHostResolutionTests {
    @Test("names become hostaddr entries, one per address; sockets, numbers and localhost are left to libpq; port lists stay aligned")
    func overrides() async throws {
        let plain = try PostgresConfiguration(dsn: "host=localhost,/var/run/postgresql,127.0.0.1 port=5432,5433,5434 user=app")
        #expect(try await plain.resolvedHosts(until: .now + .seconds(5)).isEmpty, "nothing needs a lookup")
        let numeric = try PostgresConfiguration(dsn: "host=127.0.0.1 user=app")
        #expect(try await numeric.resolvedHosts(until: .now + .seconds(5)).isEmpty)
        let given = try PostgresConfiguration(dsn: "host=db.invalid hostaddr=127.0.0.1 user=app")
        #expect(try await given.resolvedHosts(until: .now + .seconds(5)).isEmpty, "the DSN's own hostaddr wins")
        let unknown = try PostgresConfiguration(dsn: "host=localhost,no-such-host.invalid port=1,2 user=app")
        do {
            _ = try await unknown.resolvedHosts(until: .now + .seconds(10))
            Issue.record("an unknown host resolved")
        } catch {
            #expect(error.code == .connectionFailed || error.code == .timeout)
            #expect(error.message.contains("no-such-host.invalid"))
        }
    }
}

/// Authentication and connection limits, on servers of their own.
@Suite("PostgreSQL backend: authentication and limits", .timeLimit(.minutes(3)))
struct PostgresAccessTests {
    @Test("a wrong password is authenticationFailed and never shown; the right one connects, also by URI")
    func passwords() async throws {
        let cluster = try await PostgresCluster.start(standbys: 0)
        defer { cluster.destroy() }
        let server = cluster.primary
        try await server.addPasswordUser("app", password: "right-horse")
        do {
            _ = try await PostgresDriver().connect(to: "host=127.0.0.1 port=\(server.port) user=app dbname=postgres password=wrong-battery")
            Issue.record("a wrong password connected")
        } catch {
            #expect(error.code == .authenticationFailed, "\(error)")
            #expect(error.kind == .connection)
            #expect(!error.description.contains("wrong-battery"))
        }
        let byURI = try await PostgresDriver().connect(
            to: "postgres://app:right-horse@127.0.0.1:\(server.port)/postgres?application_name=tests")
        #expect(try await byURI.query("SELECT current_user")[0][0] == "app")
        await byURI.close()
    }

    @Test("TLS through sslmode: encrypted with require, verified with verify-full, refused without the right root")
    func tls() async throws {
        let cluster = try await PostgresCluster.start(standbys: 0)
        defer { cluster.destroy() }
        let server = cluster.primary
        let certificate = try await server.enableTLS()
        let plain = try await PostgresDriver().connect(to: server.dsn + " sslmode=disable")
        #expect(try await plain.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0][0] == false)
        await plain.close()
        // The reload takes effect for new connections; retry briefly until TLS is offered.
        var encrypted: (any SQLConnection)?
        for _ in 0..<50 where encrypted == nil {
            encrypted = try? await PostgresDriver().connect(to: server.dsn + " sslmode=require")
            if encrypted == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let tls = try #require(encrypted)
        #expect(try await tls.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0][0] == true)
        await tls.close()
        let verified = try await PostgresDriver().connect(
            to: "host=localhost port=\(server.port) user=postgres dbname=postgres sslmode=verify-full sslrootcert=\(certificate)")
        #expect(try await verified.query("SELECT 1")[0][0] == 1)
        await verified.close()
        do {
            _ = try await PostgresDriver().connect(to: server.dsn + " sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt")
            Issue.record("verify-full accepted a self-signed certificate")
        } catch {
            #expect(error.kind == .connection, "\(error)")
        }
    }

    @Test("as many connections as max_connections allows, each in a transaction; the next one is tooManyConnections")
    func tooManyConnections() async throws {
        let cluster = try await PostgresCluster.start(standbys: 0, maxConnections: 6)
        defer { cluster.destroy() }
        var open: [any SQLConnection] = []
        while open.count < 20 {
            do {
                let connection = try await PostgresDriver().connect(to: cluster.primary.dsn)
                try await connection.begin()
                _ = try await connection.execute("CREATE TEMP TABLE t (v int)")
                open.append(connection)
            } catch {
                #expect(error.code == .tooManyConnections, "\(error)")
                #expect(error.kind == .connection)
                break
            }
        }
        #expect(open.count == 6)
        for connection in open {
            try await connection.commit()
            await connection.close()
        }
    }
}

/// Faults on servers of their own: SIGKILL mid-query, SIGSTOP.
@Suite("PostgreSQL backend under faults", .serialized, .timeLimit(.minutes(3)))
struct PostgresFaultTests {
    @Test("SIGKILL of the server during a query is a prompt connection-class error")
    func killDuringQuery() async throws {
        let cluster = try await PostgresCluster.start(standbys: 0)
        defer { cluster.destroy() }
        let db = try await PostgresDriver().connect(to: cluster.primary.dsn)
        let query = Task { try await db.query("SELECT pg_sleep(30)") }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        try await cluster.primary.kill()
        do {
            _ = try await query.value
            Issue.record("the query survived its server")
        } catch let error as SQLError {
            #expect(error.kind == .connection, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(!db.isValid)
        await db.close()
    }

    @Test("SIGSTOP of the server makes a query time out instead of hanging")
    func stoppedServer() async throws {
        let cluster = try await PostgresCluster.start(standbys: 0)
        defer { cluster.destroy() }
        let db = try await PostgresDriver(queryTimeout: .milliseconds(500)).connect(to: cluster.primary.dsn)
        await cluster.primary.pause()
        defer { cluster.primary.resume() }
        let started = ContinuousClock.now
        do {
            _ = try await db.query("SELECT 1")
            Issue.record("a stopped server answered")
        } catch {
            #expect(error.code == .timeout, "\(error)")
            #expect(error.kind == .connection)
        }
        #expect(ContinuousClock.now - started < .seconds(3))
        await expectConnectTimeout(cluster.primary.dsn)
        await db.close()
    }

    @Test(
        "SIGSTOP of the server with no query timeout: the liveness check fails the statement within its bound (15 s by default), and close returns",
        arguments: [Duration.seconds(1), nil])
    func stoppedServerWithoutQueryTimeout(livenessCheckAfter: Duration?) async throws {
        let cluster = try await PostgresCluster.start(standbys: 0)
        defer { cluster.destroy() }
        let driver = livenessCheckAfter.map { PostgresDriver(livenessCheckAfter: $0) } ?? PostgresDriver()
        let db = try await driver.connect(to: cluster.primary.dsn)
        _ = try await db.query("SELECT 1")
        await cluster.primary.pause()
        defer { cluster.primary.resume() }
        let started = ContinuousClock.now
        do {
            _ = try await db.query("SELECT 1")
            Issue.record("a stopped server answered")
        } catch {
            #expect(error.code == .timeout && error.kind == .connection, "\(error)")
            #expect(error.message.contains("stopped answering"), "\(error)")
        }
        // The bound: the silence (10 s by default), then at most ServerLiveness.checkTimeout (5 s) for the check.
        let bound = (livenessCheckAfter ?? .seconds(10)) + .seconds(5)
        #expect(ContinuousClock.now - started < bound + TestTiming.bound(.seconds(3)))
        #expect(!db.isValid)
        let closing = ContinuousClock.now
        await db.close()
        #expect(ContinuousClock.now - closing < .seconds(2))
    }

    @Test("a statement slower than the liveness interval runs to its end: the server answers the checks")
    func slowStatementOutlivesLivenessChecks() async throws {
        let server = try await PostgresCluster.shared().primary
        let db = try await PostgresDriver(livenessCheckAfter: .milliseconds(300)).connect(to: server.dsn)
        #expect(try await db.query("SELECT pg_sleep(1.5), 7")[0][1] == 7)
        #expect(db.isValid)
        await db.close()
    }

    func expectConnectTimeout(_ dsn: String) async {
        do {
            _ = try await PostgresDriver(connectTimeout: .milliseconds(300)).connect(to: dsn)
            Issue.record("connected to a stopped server")
        } catch {
            #expect(error.code == .timeout, "\(error)")
        }
    }
}

import Foundation
import MariaDBBackend
import SQLCore
import SQLTestSupport
import TestServers
import TestSupport
import Testing

/// Users, TLS, read-only and connection limits, each on a server of its own.
@Suite("MariaDB backend: access and limits", .timeLimit(.minutes(3)))
struct MariaDBAccessTests {
    @Test("TLS: plain by default, encrypted when required, verified against the CA, refused without the right root")
    func tls() async throws {
        let server = try await MariaDBServer.start(name: "tls", tls: true)
        defer { server.destroy() }
        let cipher = "SHOW SESSION STATUS LIKE 'Ssl_cipher'"
        let plain = try await MariaDBDriver().connect(to: server.dsn)
        #expect(try await plain.query(cipher)[0][1] == "")
        await plain.close()
        let encrypted = try await MariaDBDriver().connect(to: server.dsn + "?tls=required")
        #expect(try await encrypted.query(cipher)[0][1] != "")
        await encrypted.close()
        let verified = try await MariaDBDriver().connect(
            to: "mysql://test:test@localhost:\(server.port)/test?tls=true&tls-ca=\(server.certificatePath)")
        #expect(try await verified.query(cipher)[0][1] != "")
        await verified.close()
        do {
            _ = try await MariaDBDriver().connect(to: server.dsn + "?tls=true&tls-ca=/etc/ssl/certs/ca-certificates.crt")
            Issue.record("a self-signed certificate was accepted")
        } catch {
            #expect(error.kind == .connection, "\(error)")
            #expect(!error.description.contains(":test@"))
        }
    }

    @Test("read_only is detectable, and a write on a read-only server is readOnly")
    func readOnly() async throws {
        let server = try await MariaDBServer.start(name: "readonly")
        defer { server.destroy() }
        try await server.addUser("app", password: "app-pass", grants: "ALL ON test.*")
        let db = try await MariaDBDriver().connect(to: "mysql://app:app-pass@127.0.0.1:\(server.port)/test") as! MariaDBConnection
        _ = try await db.execute("CREATE TABLE t (v INT)")
        #expect(try await db.isReadOnly() == false)
        try await server.query("SET GLOBAL read_only = 1")
        #expect(try await db.isReadOnly() == true)
        let refused = await expectSQLError(.readOnly) { _ = try await db.execute("INSERT INTO t VALUES (?)", [1]) }
        #expect(refused?.kind == .statement)
        #expect(db.isValid)
        await db.close()
    }

    @Test("as many connections as max_connections allows, each in a transaction; the next is tooManyConnections (1040)")
    func tooManyConnections() async throws {
        let server = try await MariaDBServer.start(name: "limits", maxConnections: 10)  // MariaDB's minimum
        defer { server.destroy() }
        // Without SUPER, so the extra administrator connection does not count.
        try await server.addUser("app", password: "app-pass", grants: "ALL ON test.*")
        let dsn = "app:app-pass@tcp(127.0.0.1:\(server.port))/test"
        var open: [any SQLConnection] = []
        while open.count < 20 {
            do {
                let connection = try await MariaDBDriver().connect(to: dsn)
                try await connection.begin()
                _ = try await connection.execute("CREATE TEMPORARY TABLE t (v INT)")
                open.append(connection)
            } catch {
                #expect(error.code == .tooManyConnections, "\(error)")
                #expect(error.nativeCode == 1040)
                #expect(error.kind == .connection)
                break
            }
        }
        #expect(open.count == 10)
        for connection in open {
            try await connection.commit()
            await connection.close()
        }
    }
}

/// Faults on servers of their own: SIGKILL mid-query, SIGSTOP.
@Suite("MariaDB backend under faults", .serialized, .timeLimit(.minutes(3)))
struct MariaDBFaultTests {
    @Test("SIGKILL of the server during a query is a prompt connection-class error")
    func killDuringQuery() async throws {
        let server = try await MariaDBServer.start(name: "killed")
        defer { server.destroy() }
        let db = try await MariaDBDriver().connect(to: server.dsn)
        let query = Task { try await db.query("SELECT SLEEP(30)") }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        try await server.kill()
        do {
            _ = try await query.value
            Issue.record("the query survived its server")
        } catch let error as SQLError {
            #expect(error.kind == .connection, "\(error)")
            #expect(error.code == .connectionLost, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(!db.isValid)
        await db.close()
    }

    @Test("SIGSTOP of the server makes a query time out and a connect time out, instead of hanging")
    func stoppedServer() async throws {
        let server = try await MariaDBServer.start(name: "stopped")
        defer { server.destroy() }
        let db = try await MariaDBDriver(queryTimeout: .milliseconds(500)).connect(to: server.dsn)
        await server.pause()
        defer { server.resume() }
        let started = ContinuousClock.now
        await expectSQLError(.timeout) { _ = try await db.query("SELECT 1") }
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(!db.isValid)
        let connectStarted = ContinuousClock.now
        let timedOut = await expectSQLError(.timeout) {
            _ = try await MariaDBDriver(connectTimeout: .milliseconds(300)).connect(to: server.dsn)
        }
        #expect(timedOut?.kind == .connection)
        #expect(ContinuousClock.now - connectStarted < .seconds(3))
        await db.close()
    }

    @Test(
        "SIGSTOP of the server with no query timeout: the liveness check fails the statement within its bound (15 s by default), and close returns",
        arguments: [Duration.seconds(1), nil])
    func stoppedServerWithoutQueryTimeout(livenessCheckAfter: Duration?) async throws {
        let server = try await MariaDBServer.start(name: "stopped-liveness-\(livenessCheckAfter == nil ? "default" : "1s")")
        defer { server.destroy() }
        let driver = livenessCheckAfter.map { MariaDBDriver(livenessCheckAfter: $0) } ?? MariaDBDriver()
        let db = try await driver.connect(to: server.dsn)
        _ = try await db.query("SELECT 1")
        await server.pause()
        defer { server.resume() }
        let started = ContinuousClock.now
        let error = await expectSQLError(.timeout) { _ = try await db.query("SELECT 1") }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("stopped answering") == true, "\(String(describing: error))")
        // The bound: the silence (10 s by default), then a check of at most 5 s.
        let bound = (livenessCheckAfter ?? .seconds(10)) + .seconds(5)
        #expect(ContinuousClock.now - started < bound + TestTiming.bound(.seconds(3)))
        #expect(!db.isValid)
        let closing = ContinuousClock.now
        await db.close()
        #expect(ContinuousClock.now - closing < .seconds(3))
    }

    @Test("a statement slower than the liveness interval runs to its end: the server greets the checks")
    func slowStatementOutlivesLivenessChecks() async throws {
        let server = try await MariaDBServer.shared()
        let db = try await MariaDBDriver().connect(to: server.dsn + "?livenessCheck=300ms")
        #expect(try await db.query("SELECT SLEEP(1.5), 7")[0][1] == 7)
        #expect(db.isValid)
        await db.close()
    }
}

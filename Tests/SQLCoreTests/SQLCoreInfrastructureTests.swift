import ConnectionKit
import Foundation
import SQLCore
import Synchronization
import Testing

@Suite("placeholders, errors, registry, DSN redaction", .timeLimit(.minutes(2)))
struct SQLCoreInfrastructureTests {
    @Test("? becomes $n outside literals, identifiers, comments and dollar quotes; ?? is a literal ?")
    func placeholders() {
        #expect(SQLPlaceholders.numbered("SELECT ?, ?") == ("SELECT $1, $2", 2))
        #expect(SQLPlaceholders.numbered("SELECT '?', \"?\", ? -- ?\n, ?") == ("SELECT '?', \"?\", $1 -- ?\n, $2", 2))
        #expect(SQLPlaceholders.numbered("SELECT 'it''s ?', ?") == ("SELECT 'it''s ?', $1", 1))
        #expect(SQLPlaceholders.numbered("SELECT E'\\' ?', ?") == ("SELECT E'\\' ?', $1", 1))
        #expect(SQLPlaceholders.numbered("/* ? /* ? */ ? */ SELECT ?") == ("/* ? /* ? */ ? */ SELECT $1", 1))
        #expect(SQLPlaceholders.numbered("SELECT $$ ? $$, $tag$ ? $tag$, ?") == ("SELECT $$ ? $$, $tag$ ? $tag$, $1", 1))
        #expect(SQLPlaceholders.numbered("SELECT data ?? 'k', data ??| ?") == ("SELECT data ? 'k', data ?| $1", 1))
        #expect(SQLPlaceholders.numbered("SELECT 'unterminated ?") == ("SELECT 'unterminated ?", 0))
        #expect(SQLPlaceholders.numbered("SELECT a$1 FROM t WHERE x = ?") == ("SELECT a$1 FROM t WHERE x = $1", 1))
    }

    @Test("error descriptions name backend, node, code, native code and SQLSTATE, but not detail")
    func errorDescription() {
        let error = SQLError(
            .constraintViolation, message: "duplicate key", nativeCode: 1062, sqlState: "23000",
            detail: "Key (email)=(ada@example.com) already exists", backend: "mariadb"
        ).on(node: "db-2")
        #expect(error.description == "mariadb node db-2 constraintViolation 1062 SQLSTATE 23000: duplicate key")
        #expect(!error.description.contains("ada@example.com"))
        #expect(error.kind == .statement)
        #expect(SQLError(.connectionLost, message: "reset").isConnectionError)
        #expect(SQLError(.busy, kind: .connection, message: "x").kind == .connection)
        // Codes compare by identity: a code made again under a taken name is another code.
        #expect(SQLError.Code("custom", defaultKind: .connection) != SQLError.Code("custom", defaultKind: .connection))
        #expect(SQLError.Code("timeout", defaultKind: .connection) != .timeout)
        #expect(Set([SQLError.Code.timeout, .timeout, .closed]).count == 2)
    }

    @Test("DSN redaction hides passwords in every DSN form")
    func redaction() {
        #expect(DSNRedaction.redact("postgres://app:s3cret@db:5432/app") == "postgres://app:***@db:5432/app")
        #expect(DSNRedaction.redact("app:s3cret@tcp(127.0.0.1:3306)/app") == "app:***@tcp(127.0.0.1:3306)/app")
        #expect(DSNRedaction.redact("host=db user=app password=s3cret dbname=app") == "host=db user=app password=*** dbname=app")
        #expect(DSNRedaction.redact("mysql://db/app?user=x&password=s3cret&tls=1") == "mysql://db/app?user=x&password=***&tls=1")
        #expect(DSNRedaction.redact("/var/db/local.sqlite") == "/var/db/local.sqlite")
        // An address opened and never closed (found by the fuzzer: the output was redacted again differently).
        #expect(DSNRedaction.redact("app:s3cret@tcp(db") == DSNRedaction.unparsable)
        #expect(DSNRedaction.redact("app:s3cret@tcp(?parseTime=true") == DSNRedaction.unparsable)
        #expect(DSNRedaction.redact("app:s3cret@/app?tls=1") == "app:***@/app?tls=1")
        #expect(DSNRedaction.redact("app:s3cret@/é") == "app:***@/***")
        #expect(DSNRedaction.redact("app:s3cret@tcp(db)/é") == "app:***@tcp(db)/***")
    }

    struct StubDriver: SQLDriver {
        let name: String
        func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
            throw SQLError(.connectionFailed, message: "\(name) has no server")
        }
    }

    @Test("the registry opens by name, refuses duplicates and unknown names")
    func registry() async throws {
        let registry = SQLDriverRegistry()
        try registry.register(StubDriver(name: "one"), as: "one")
        #expect(throws: SQLError.self) { try registry.register(StubDriver(name: "again"), as: "one") }
        #expect(throws: SQLError.self) { try registry.register(StubDriver(name: "empty"), as: "") }
        #expect(registry.names == ["one"])
        do {
            _ = try await registry.connect(driver: "one", dsn: "x")
        } catch {
            #expect(error.message == "one has no server")
        }
        do {
            _ = try await registry.connect(driver: "two", dsn: "x")
        } catch {
            #expect(error.code == .unknownDriver)
            #expect(error.message.contains("registered: one"))
        }
        #expect(registry.unregister("one"))
        #expect(!registry.unregister("one"))
    }

    @Test("concurrent registration of one name: exactly one wins")
    func registryRace() async {
        let registry = SQLDriverRegistry()
        let wins = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<200 {
                group.addTask { (try? registry.register(StubDriver(name: "\(i)"), as: "shared")) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }
}

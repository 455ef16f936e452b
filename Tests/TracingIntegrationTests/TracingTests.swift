import ClusterSQL
import ConnectionKit
import FaultInjection
import Foundation
import InMemoryTracing
import Memcached
import NIOCore
import PostgresBackend
import Redis
import SQLCore
import SQLiteBackend
import TestServers
import Testing
import Tracing

/// Every attribute of `span` as text, for assertions.
func texts(_ span: FinishedInMemorySpan) -> [String: String] {
    var texts: [String: String] = [:]
    span.attributes.forEach { key, value in
        switch value.toSpanAttribute() {
        case .string(let text): texts[key] = text
        case .int64(let number): texts[key] = String(number)
        case .bool(let flag): texts[key] = String(flag)
        case .stringArray(let list): texts[key] = list.joined(separator: ",")
        default: texts[key] = "\(value)"
        }
    }
    return texts
}

/// Whether `secret` appears anywhere in the spans: names, attributes, events, recorded errors.
func anySpan(_ spans: [FinishedInMemorySpan], contains secret: String) -> Bool {
    spans.contains { span in
        span.operationName.contains(secret) || texts(span).values.contains { $0.contains(secret) }
            || span.events.contains { $0.name.contains(secret) } || span.errors.contains { "\($0.error)".contains(secret) }
    }
}

@Suite("Tracing: spans with OpenTelemetry's database attributes, never a value or a secret", .timeLimit(.minutes(2)))
struct TracingTests {
    @Test("PostgreSQL statements: one client span each, named by operation and database; an error has its type; no value")
    func postgres() async throws {
        let tracer = InMemoryTracer()
        let server = try await PostgresCluster.shared().primary
        let connection = try await PostgresDriver(tracing: TracingConfiguration(tracer: tracer)).connect(to: server.dsn)
        _ = try await connection.query("SELECT ?::text", ["hunter2-value"])
        let statement = try await connection.prepare("  -- a comment\n select ?::int")
        _ = try await statement.query([42])
        await #expect(throws: SQLError.self) { try await connection.query("SELEKT 1") }
        // The server's message quotes the value ("invalid input syntax for type integer: ..."): not in the span.
        await #expect(throws: SQLError.self) { try await connection.query("/* a hint */ SELECT ?::int", ["hunter2-bad"]) }
        await connection.close()
        let spans = tracer.finishedSpans
        #expect(
            spans.map(\.operationName) == [
                "SELECT postgres", "PREPARE postgres", "SELECT postgres", "SELEKT postgres", "SELECT postgres",
            ])
        #expect(texts(spans[4])["error.type"] == "typeMismatch" || texts(spans[4])["error.type"] == "serverError", "\(texts(spans[4]))")
        let first = texts(spans[0])
        #expect(first["db.system.name"] == "postgresql" && first["db.namespace"] == "postgres" && first["db.operation.name"] == "SELECT")
        #expect(first["server.address"] == "127.0.0.1" && first["server.port"] == String(server.port))
        #expect(spans.allSatisfy { $0.kind == .client })
        #expect(texts(spans[3])["error.type"] == "syntaxError" && spans[3].status?.code == .error && spans[3].errors.count == 1)
        #expect(!anySpan(spans, contains: "hunter2"))
    }

    @Test("a cluster: an open span with the nodes tried and the one chosen, the node's statement span, a retry span")
    func cluster() async throws {
        let tracer = InMemoryTracer()
        let tracing = TracingConfiguration(tracer: tracer)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-tracing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = ClusterDriverConfiguration(name: "traced")
        configuration.strategy = .roundRobin
        configuration.retryReads = true
        configuration.hedgeDelay = .seconds(30)  // no hedge, however slow the machine: only n2 is tried
        let cluster = ClusterDriver(configuration: configuration, tracing: tracing)
        var drivers: [FaultInjectingDriver] = []
        for name in ["n1", "n2"] {
            let driver = FaultInjectingDriver(wrapping: SQLiteDriver(tracing: tracing))
            drivers.append(driver)
            try cluster.addNode(name: name, driver: driver, dsn: folder.appendingPathComponent("\(name).sqlite").path)
        }
        let connection = try await cluster.connect(to: "")
        let opens = tracer.finishedSpans.filter { $0.operationName == "clustersql.open" }
        #expect(opens.count == 1)
        let open = texts(try #require(opens.first))
        #expect(open["clustersql.cluster"] == "traced" && open["clustersql.target"] == "any")
        #expect(open["clustersql.candidates"] == "n2,n1" && open["clustersql.nodes_tried"] == "n2" && open["clustersql.node"] == "n2")
        // The node's reply is lost once: the plain read is retried on the other node.
        drivers[1].faults.statementFailureRate = 1
        tracer.clearFinishedSpans()
        _ = try await connection.query("SELECT ?", ["hunter2-value"])
        let names = tracer.finishedSpans.map(\.operationName)
        #expect(names.contains("SELECT n2.sqlite") && names.contains("SELECT n1.sqlite") && names.contains("clustersql.retry"), "\(names)")
        let retry = texts(try #require(tracer.finishedSpans.first { $0.operationName == "clustersql.retry" }))
        #expect(retry["clustersql.failed_node"] == "n2" && retry["clustersql.attempt"] == "2" && retry["error.type"] == "connectionLost")
        #expect(texts(try #require(tracer.finishedSpans.first { $0.operationName == "SELECT n1.sqlite" }))["db.system.name"] == "sqlite")
        #expect(!anySpan(tracer.finishedSpans, contains: "hunter2"))
        await connection.close()
    }

    @Test(
        "Redis commands through a pool: one span each, named by command and database index; an error reply has its type; no key, value or password"
    )
    func redis() async throws {
        let tracer = InMemoryTracer()
        let server = try await RedisServer.start(name: "tracing", password: "hunter2-password")
        defer { server.destroy() }
        var configuration = try RedisConfiguration(url: "redis://:hunter2-password@127.0.0.1:\(server.port)/2")
        configuration.tracing = TracingConfiguration(tracer: tracer)
        let pool = RedisPool(configuration: configuration, size: 1)
        try await pool.set("hunter2-key", to: "hunter2-value")
        #expect(try await pool.getString("hunter2-key") == "hunter2-value")
        await #expect(throws: RedisError.self) { _ = try await pool.send("INCR", "hunter2-key") }
        await pool.close()
        let spans = tracer.finishedSpans
        #expect(spans.map(\.operationName) == ["SET 2", "GET 2", "INCR 2"], "\(spans.map(\.operationName))")
        let get = texts(spans[1])
        #expect(get["db.system.name"] == "redis" && get["db.namespace"] == "2" && get["db.operation.name"] == "GET")
        #expect(get["server.address"] == "127.0.0.1" && get["server.port"] == String(server.port))
        #expect(spans[2].status?.code == .error && texts(spans[2])["error.type"] != nil)
        #expect(!anySpan(spans, contains: "hunter2"))
    }

    @Test("memcached requests: one span each, named by the meta command; no key or value")
    func memcached() async throws {
        let tracer = InMemoryTracer()
        let server = try await MemcachedServer.start(name: "tracing")
        defer { server.destroy() }
        var settings = try MemcachedServerConfiguration(address: server.address)
        settings.tracing = TracingConfiguration(tracer: tracer)
        let client = MemcachedClient(configuration: MemcachedClientConfiguration(servers: [settings]))
        try await client.set("hunter2-key", to: ByteBuffer(string: "hunter2-value"))
        #expect(try await client.get("hunter2-key") != nil)
        await client.close()
        let spans = tracer.finishedSpans.filter { $0.operationName != "mn" }  // the pool's pings
        #expect(spans.map(\.operationName) == ["ms", "mg"], "\(spans.map(\.operationName))")
        let get = texts(spans[1])
        #expect(get["db.system.name"] == "memcached" && get["server.port"] == String(server.port) && get["db.namespace"] == nil)
        #expect(!anySpan(spans, contains: "hunter2"))
    }

    @Test("off: no tracer, or the no-op one, makes no spans and hands out the backend's own connection")
    func off() async throws {
        #expect(!TracingConfiguration(tracer: nil).isEnabled && !TracingConfiguration(tracer: NoOpTracer()).isEnabled)
        #expect(!TracingConfiguration.disabled.isEnabled && TracingConfiguration(tracer: InMemoryTracer()).isEnabled)
        #expect(TracingConfiguration(tracer: NoOpTracer()) == .disabled)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-untraced-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let connection = try await SQLiteDriver(tracing: .disabled).connect(to: path)
        #expect(connection is SQLiteConnection)
        await connection.close()
    }
}

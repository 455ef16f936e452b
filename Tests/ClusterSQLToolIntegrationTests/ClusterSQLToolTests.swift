import Foundation
import TestServers
import Testing

/// Runs the built `clustersql` binary the way a user would.
@Suite("clustersql command line", .timeLimit(.minutes(2)))
struct ClusterSQLToolTests {
    struct Run {
        let status: Int32
        let output: String
        let errors: String
    }

    /// The products folder holds both this test bundle and the tool.
    static let binary: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("clustersql")

    /// Runs the tool on a thread of its own (waiting for it must not hold one of
    /// the cooperative pool's two threads while other suites run beside it).
    func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Run {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CLUSTERSQL_CONFIG")
        env.merge(environment) { $1 }
        let result = try await Commands.runCapturing(Self.binary.path, arguments, environment: env)
        return Run(status: result.status, output: result.output, errors: result.errors)
    }

    /// A config with one SQLite cluster of `nodes` nodes (n1, n2, ...) in a temporary folder, then `extra`.
    func makeConfig(nodes: Int = 2, extra: String = "") throws -> (config: String, folder: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = folder.appendingPathComponent("config.toml")
        try """
        data_dir = "data"
        [clusters.local]
        driver = "sqlite"
        nodes = [\((1...nodes).map { "{ name = \"n\($0)\", dsn = \"n\($0).sqlite\" }" }.joined(separator: ", "))]
        \(extra)
        """.write(to: config, atomically: true, encoding: .utf8)
        return (config.path, folder)
    }

    @Test("query prints an aligned table, JSON lines with --json, and reports changes")
    func query() async throws {
        let (config, folder) = try makeConfig(nodes: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try await run(["query", "--config", config, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, ok BOOLEAN)"]).status == 0)
        let insert = try await run(["query", "--config", config, "INSERT INTO t (name, ok) VALUES (?, ?)", "Ada Lovelace", "true"])
        #expect(insert.status == 0)
        #expect(insert.output == "1 row affected, last insert id 1\n")
        let table = try await run(["query", "--config", config, "SELECT id, name, ok FROM t WHERE id = ?", "1"])
        #expect(table.status == 0)
        #expect(
            table.output == """
                id | name         | ok
                ---+--------------+-----
                1  | Ada Lovelace | true
                (1 row)

                """)
        let json = try await run(
            ["query", "--json", "SELECT id, name, ok, NULL AS absent FROM t"], environment: ["CLUSTERSQL_CONFIG": config])
        #expect(json.status == 0)
        #expect(json.output == "{\"id\":1,\"name\":\"Ada Lovelace\",\"ok\":true,\"absent\":null}\n")
    }

    @Test("query escapes every control character a server sends (C0, DEL, C1), in values and column names")
    func controlCharacters() async throws {
        let (config, folder) = try makeConfig(nodes: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        // ESC [2J would clear the screen, CSI (U+009B) is its one-character form in C1, DEL rubs out.
        let sql = "SELECT char(27) || '[2J' || char(155) || 'x' || char(127) || char(7) AS \"a\u{1b}b\""
        let table = try await run(["query", "--config", config, sql])
        #expect(table.status == 0, "\(table.errors)")
        #expect(table.output.contains("\\u{1b}[2J\\u{9b}x\\u{7f}\\u{7}"), "\(table.output)")
        #expect(table.output.contains("a\\u{1b}b"), "the header: \(table.output)")
        #expect(!table.output.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) })
    }

    @Test(
        "every failure is one line on stderr and a non-zero exit",
        arguments: [
            (["query", "--config", "/nonexistent/config.toml", "SELECT 1"], "does not exist"),
            (["query", "--cluster", "nope", "SELECT 1"], "no cluster named nope"),
            (["query", "SELEKT 1"], "syntaxError"),
            (["query", "SELECT ?"], "parameterCountMismatch"),
            (["query", "--node", "n9", "SELECT 1"], "has no node n9"),
            (["query", "--node", "n2", "SELEKT 1"], "syntaxError"),
        ])
    func failures(arguments: [String], expected: String) async throws {
        let (config, folder) = try makeConfig()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await run(arguments, environment: ["CLUSTERSQL_CONFIG": config])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.errors.hasPrefix("clustersql: "))
        #expect(result.errors.contains(expected), "\(result.errors)")
        #expect(result.errors.split(separator: "\n").count == 1)
    }

    @Test("demo: a workload through the cluster; halfway one node turns slow and one dies; traffic leaves both, nothing fails")
    func demo() async throws {
        let (config, folder) = try makeConfig(nodes: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await run(["demo", "--config", config, "--operations", "6000", "--tasks", "4", "--slow-milliseconds", "20"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("6000/6000 statements"))
        #expect(result.output.contains("failed statements: none"), "\(result.output)")
        // Phase 2 shares: the dead node's share is at most a few statements; the slow one gets
        // less than half the fast one's (loosely: this suite runs beside server start-ups; the
        // strict 10% bounds are ClusterTimingTests' in virtual time and LatencyBalancingTests').
        let shares = result.output.split(separator: "\n").filter { $0.hasPrefix("n") && $0.contains("%)") }
        #expect(shares.count == 3, "\(result.output)")
        func secondPhasePercent(_ node: String) -> Int? {
            guard let line = shares.first(where: { $0.hasPrefix(node + " ") }) else { return nil }
            let cell = line.split(separator: "|")[2]
            return Int(cell.split(separator: "(")[1].split(separator: "%")[0])
        }
        #expect((secondPhasePercent("n3") ?? 100) <= 1, "\(result.output)")
        #expect((secondPhasePercent("n2") ?? 100) * 2 < (secondPhasePercent("n1") ?? 0), "\(result.output)")
        #expect(result.output.contains("| ejected |"))
    }

    @Test("stats: a table after one check of every node; --json has the seed's names and no password")
    func stats() async throws {
        let (config, folder) = try makeConfig(
            extra: """
                [clusters.pg]
                driver = "postgres"
                nodes = [{ name = "down", dsn = "postgres://app:hunter2@127.0.0.1:1/db?connect_timeout=2" }]
                """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let table = try await run(["stats", "--config", config])
        #expect(table.status == 0, "\(table.errors)")
        #expect(table.output.contains("n1 ") && table.output.contains("| up ") && table.output.contains("| primary "))
        let json = try await run(["stats", "--json", "--config", config, "--cluster", "pg"])
        #expect(json.status == 0, "\(json.errors)")
        for key in ["FirstInstantiated", "Connections", "Errors", "LastSuccess", "LastError", "LastErrorMessage"] {
            #expect(json.output.contains("\"\(key)\""), "\(json.output)")
        }
        #expect(json.output.contains("\"ejected\""))
        #expect(!json.output.contains("hunter2") && !json.errors.contains("hunter2"))
    }

    @Test("check: each node's reachability, role and latency; exit 1 when no node serves the target")
    func check() async throws {
        let (config, folder) = try makeConfig(
            extra: """
                [clusters.pg]
                driver = "postgres"
                target = "read-write"
                nodes = [{ name = "down", dsn = "postgres://app:hunter2@127.0.0.1:1/db?connect_timeout=2" }]
                """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let healthy = try await run(["check", "--config", config])
        #expect(healthy.status == 0, "\(healthy.errors)")
        #expect(healthy.output.contains("usable for target any (2 of 2 nodes)"), "\(healthy.output)")
        let standby = try await run(["check", "--config", config, "--target", "standby"])
        #expect(standby.status == 1)
        #expect(standby.output.contains("UNUSABLE for target standby"), "\(standby.output)")
        let down = try await run(["check", "--config", config, "--cluster", "pg"])
        #expect(down.status == 1)
        #expect(down.output.contains("down ") && down.output.contains("| no "))
        #expect(!down.output.contains("hunter2"))
    }
}

import Foundation
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

    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CLUSTERSQL_CONFIG")
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                   errors: String(decoding: errors, as: UTF8.self))
    }

    /// A config with one SQLite cluster of two nodes in a temporary folder.
    func makeConfig() throws -> (config: String, folder: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clustersql-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = folder.appendingPathComponent("config.toml")
        try """
            data_dir = "data"
            [clusters.local]
            driver = "sqlite"
            nodes = [{ name = "n1", dsn = "n1.sqlite" }, { name = "n2", dsn = "n2.sqlite" }]
            """.write(to: config, atomically: true, encoding: .utf8)
        return (config.path, folder)
    }

    @Test("query prints an aligned table, JSON lines with --json, and reports changes")
    func query() throws {
        let (config, folder) = try makeConfig()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try run(["query", "--config", config, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, ok BOOLEAN)"]).status == 0)
        let insert = try run(["query", "--config", config, "INSERT INTO t (name, ok) VALUES (?, ?)", "Ada Lovelace", "true"])
        #expect(insert.status == 0)
        #expect(insert.output == "1 row affected, last insert id 1\n")
        let table = try run(["query", "--config", config, "SELECT id, name, ok FROM t WHERE id = ?", "1"])
        #expect(table.status == 0)
        #expect(table.output == """
            id | name         | ok
            ---+--------------+-----
            1  | Ada Lovelace | true
            (1 row)

            """)
        let json = try run(["query", "--json", "SELECT id, name, ok, NULL AS absent FROM t"], environment: ["CLUSTERSQL_CONFIG": config])
        #expect(json.status == 0)
        #expect(json.output == "{\"id\":1,\"name\":\"Ada Lovelace\",\"ok\":true,\"absent\":null}\n")
    }

    @Test("every failure is one line on stderr and a non-zero exit",
          arguments: [
            (["query", "--config", "/nonexistent/config.toml", "SELECT 1"], "does not exist"),
            (["query", "--cluster", "nope", "SELECT 1"], "no cluster named nope"),
            (["query", "SELEKT 1"], "syntaxError"),
            (["query", "SELECT ?"], "parameterCountMismatch"),
          ])
    func failures(arguments: [String], expected: String) throws {
        let (config, folder) = try makeConfig()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try run(arguments, environment: ["CLUSTERSQL_CONFIG": config])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.errors.hasPrefix("clustersql: "))
        #expect(result.errors.contains(expected), "\(result.errors)")
        #expect(result.errors.split(separator: "\n").count == 1)
    }

    @Test("demo runs its workload on every node and summarizes it")
    func demo() throws {
        let (config, folder) = try makeConfig()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try run(["demo", "--config", config, "--orders", "1500", "--readers", "2", "--reads", "100"])
        #expect(result.status == 0, "\(result.errors)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("n1 ") && $0.contains("| 1500 ") })
        #expect(lines.contains { $0.hasPrefix("n2 ") && $0.contains("| 1500 ") })
        #expect(result.errors.contains("3000/3000 orders (100%)"))
    }
}

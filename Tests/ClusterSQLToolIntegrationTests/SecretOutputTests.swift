import Foundation
import Testing

/// Every command of the tool, at trace log level, over clusters and services whose
/// credentials hold the characters that break naive redaction: no output shows them.
///
/// The servers are not there (port 1 refuses at once), so each node fails and its error,
/// its `LastErrorMessage`, the logs and the tables all have a chance to leak. Each password
/// holds `¤`, which nothing else in the file or in any message holds, so a leak of any piece
/// of it that includes that character is caught, however short the password.
@Suite("clustersql never shows a password", .timeLimit(.minutes(3)))
struct SecretOutputTests {
    let tool = ClusterSQLToolTests()

    static let passwords = ["¤", "a b¤c", "p@ss:¤/w%41?x=1&", "it's¤\"q\"\\ é"]

    /// `text` with every character but ASCII letters and digits %-escaped.
    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))!
    }

    /// `text` as a TOML basic string.
    static func toml(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The DSN of each form for `password`, every one naming a port where nothing listens.
    static func dsns(_ password: String) -> [(cluster: String, driver: String, dsn: String)] {
        let keyword = password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        return [
            ("pguri", "postgres", "postgres://app:\(encoded(password))@127.0.0.1:1/db?connect_timeout=2"),
            ("pgkeyword", "postgres", "host=127.0.0.1 port=1 user=app password='\(keyword)' dbname=db connect_timeout=2"),
            ("myurl", "mariadb", "mysql://app:\(encoded(password))@127.0.0.1:1/db?timeout=2s"),
            ("mygo", "mariadb", "app:\(encoded(password))@tcp(127.0.0.1:1)/db?timeout=2s"),
        ]
    }

    func expectNoSecret(_ run: ClusterSQLToolTests.Run, _ password: String, _ what: String) {
        for output in [run.output, run.errors] {
            #expect(
                !output.contains("¤") && !output.contains(password) && !output.contains(Self.encoded(password)),
                "\(what): \(output)")
        }
    }

    @Test("check, stats, stats --json and query on every DSN form, and check and stats on Redis and Sentinel services")
    func wellFormed() async throws {
        for password in Self.passwords {
            let clusters = Self.dsns(password).map { cluster, driver, dsn in
                "[clusters.\(cluster)]\ndriver = \"\(driver)\"\nnodes = [{ name = \"n\", dsn = \(Self.toml(dsn)) }]\n"
            }
            let (config, folder) = try tool.makeConfig(
                nodes: 1,
                extra: clusters.joined() + """
                    [services.redis]
                    kind = "redis"
                    url = \(Self.toml("redis://:\(Self.encoded(password))@127.0.0.1:1/0"))
                    [services.sentinel]
                    kind = "sentinel"
                    sentinels = ["127.0.0.1:1"]
                    master_name = "m"
                    sentinel_password = \(Self.toml(password))
                    username = "app"
                    password = \(Self.toml(password))
                    """)
            defer { try? FileManager.default.removeItem(at: folder) }
            let trace = ["--config", config, "--log-level", "trace"]
            for (cluster, _, _) in Self.dsns(password) {
                for command in [["check"], ["stats"], ["stats", "--json"], ["query", "SELECT 1"]] {
                    let run = try await tool.run(command + trace + ["--cluster", cluster])
                    #expect(run.status != 0 || command[0] == "stats", "\(command) \(cluster) should fail: \(run.output)")
                    expectNoSecret(run, password, "\(command) \(cluster)")
                }
            }
            for service in ["redis", "sentinel"] {
                for command in [["check"], ["stats", "--json"]] {
                    let run = try await tool.run(command + trace + ["--service", service])
                    expectNoSecret(run, password, "\(command) \(service)")
                }
            }
        }
    }

    @Test("a malformed DSN of every form, cut inside or after its password: the tool's error and logs show none of it")
    func malformed() async throws {
        for password in Self.passwords {
            for (cluster, driver, dsn) in Self.dsns(password) {
                let start = dsn.range(of: "¤") ?? dsn.range(of: "%C2%A4")!
                for broken in [String(dsn[..<start.upperBound]), String(dsn[..<start.upperBound]) + "%zz'\"@", dsn + " '"] {
                    let (config, folder) = try tool.makeConfig(
                        nodes: 1,
                        extra: """
                            [clusters.\(cluster)]
                            driver = "\(driver)"
                            nodes = [{ name = "n", dsn = \(Self.toml(broken)) }]
                            """)
                    defer { try? FileManager.default.removeItem(at: folder) }
                    for command in [["check"], ["stats", "--json"]] {
                        let run = try await tool.run(command + ["--config", config, "--log-level", "trace", "--cluster", cluster])
                        expectNoSecret(run, password, "\(command) \(broken)")
                    }
                }
            }
        }
    }
}

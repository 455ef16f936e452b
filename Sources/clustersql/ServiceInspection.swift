import ArgumentParser
import ClusterConfig
import ConnectionKit
import Foundation
import Logging
import Memcached
import RESP
import Redis
import SQLCore

/// What `check --service` and `stats --service` show of a Redis service.
struct ServiceReport: Codable {
    /// The service's name.
    var service: String
    /// `sentinel` or `redis`.
    var kind: String
    /// The verified master, `host:port`; `nil` when none.
    var master: String?
    /// The replicas that passed the checks.
    var replicas: [String]
    /// What each sentinel said.
    var sentinels: [SentinelReport]
    /// Why no master was verified.
    var error: String?
    /// The Sentinel client's figures (sentinel services only).
    var statistics: SentinelMasterStatistics?
    /// Each server of a memcached service.
    var servers: [MemcachedServerReport]?

    /// Asks the service: a Sentinel client runs until the master is verified (or its
    /// wait passes) and one check of the replicas and every sentinel is done; a plain
    /// server is asked `ROLE`.
    static func inspect(_ service: ServiceConfiguration, logger: Logger) async -> ServiceReport {
        switch service.kind {
        case .sentinel(var configuration):
            configuration.masterWait = .seconds(3)
            configuration.recheckInterval = .milliseconds(200)
            return await inspectSentinel(service.name, configuration, logger: logger)
        case .memcached(let configuration, _):
            let servers = await MemcachedServerReport.inspect(configuration)
            var report = ServiceReport(service: service.name, kind: "memcached", replicas: [], sentinels: [], servers: servers)
            let up = servers.filter(\.up).count
            if up == 0 { report.error = "no server answers" }
            return report
        case .redis(let configuration):
            var report = ServiceReport(service: service.name, kind: "redis", replicas: [], sentinels: [])
            do throws(RedisError) {
                var settings = configuration
                settings.connectTimeout = .seconds(3)
                settings.readTimeout = .seconds(3)
                let connection = try await RedisConnection.connect(settings, logger: logger)
                let role: String
                do throws(RedisError) {
                    role = try await connection.send("ROLE").elements?.first?.string ?? "unknown"
                } catch {
                    await connection.close()
                    throw error
                }
                await connection.close()
                if role == "master" { report.master = configuration.endpoint } else { report.error = "the server's role is \(role)" }
            } catch {
                report.error = "\(error)"
            }
            return report
        }
    }

    private static func inspectSentinel(_ name: String, _ configuration: SentinelConfiguration, logger: Logger) async -> ServiceReport {
        let masterName = configuration.masterNames[0]
        var report = ServiceReport(service: name, kind: "sentinel", replicas: [], sentinels: [])
        let client: SentinelClient
        do throws(RedisError) {
            client = try SentinelClient(configuration: configuration, logger: logger)
        } catch {
            report.error = "\(error)"
            return report
        }
        let (problem, statistics) = await withTaskGroup(of: Void.self) { group -> (String?, SentinelMasterStatistics?) in
            group.addTask { try? await client.run() }
            var problem: String?
            do throws(RedisError) {
                await client.putMaster(try await client.getMaster(masterName))
                _ = try? await client.replicas(masterName).send("PING")  // replicas are looked for from their first use
                try? await Task.sleep(for: .milliseconds(600))  // a full check: every sentinel heard, replicas verified
            } catch {
                problem = "\(error)"
            }
            let statistics = client.statistics().first  // before closing, which lets go of the master
            await client.close()
            return (problem, statistics)
        }
        report.master = statistics?.master?.description
        report.replicas = statistics?.replicas.map(\.description) ?? []
        report.sentinels = statistics?.sentinels ?? []
        report.error = report.master == nil ? (problem ?? "no master verified") : nil
        report.statistics = statistics
        return report
    }

    /// Whether the service can serve: a verified master, or a memcached server that answers.
    var serves: Bool { servers.map { $0.contains(where: \.up) } ?? (master != nil) }

    /// The report as tables: the sentinels' answers, then the nodes, then a verdict line.
    func render() -> String {
        var text = "service \(service) (\(kind))\n"
        if let servers {
            let columns = SQLColumns(["server", "up", "latency ms", "items", "hit rate", "error"])
            let rows = servers.map { server in
                SQLRow(
                    columns: columns,
                    values: [
                        .text(server.server), .text(server.up ? "yes" : "no"),
                        server.latencyMilliseconds.map { .text(String(format: "%.2f", $0)) } ?? .text("-"),
                        server.items.map { .integer(Int64($0)) } ?? .text("-"),
                        server.hitRate.map { .text(String(format: "%.1f%%", $0 * 100)) } ?? .text("-"),
                        .text(server.error ?? "-"),
                    ])
            }
            text += ResultPrinter(json: false).render(SQLRows(columns: columns, rows: rows))
            let up = servers.filter(\.up).count
            let verdict =
                up == servers.count ? "all \(up) servers up" : up == 0 ? "NO SERVER UP" : "DEGRADED: \(up) of \(servers.count) servers up"
            return text + "service \(service): \(verdict)\n"
        }
        if !sentinels.isEmpty {
            let columns = SQLColumns(["sentinel", "names master", "problem"])
            let rows = sentinels.map {
                SQLRow(
                    columns: columns,
                    values: [.text($0.sentinel.description), .text($0.names?.description ?? "-"), .text($0.problem ?? "-")])
            }
            text += ResultPrinter(json: false).render(SQLRows(columns: columns, rows: rows))
        }
        let columns = SQLColumns(["node", "role"])
        let nodes = (master.map { [($0, "master")] } ?? []) + replicas.map { ($0, "replica") }
        text += ResultPrinter(json: false).render(
            SQLRows(columns: columns, rows: nodes.map { SQLRow(columns: columns, values: [.text($0.0), .text($0.1)]) }))
        if let master {
            text += "service \(service): master \(master) verified (\(replicas.count) replica\(replicas.count == 1 ? "" : "s"))\n"
        } else {
            text += "service \(service): NO MASTER: \(error ?? "unknown")\n"
        }
        return text
    }
}

/// Loads the configuration and inspects the service `name`; prints the report
/// (JSON with `json`) and exits 1 when no master was verified.
func reportService(_ name: String, options: ClusterOptions, json: Bool) async throws {
    let configuration = try ConfigurationLoader.load(path: ConfigurationLoader.resolvePath(explicit: options.config))
    let report = await ServiceReport.inspect(try configuration.service(named: name), logger: options.logger)
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    } else {
        print(report.render(), terminator: "")
    }
    if !report.serves { throw ExitCode.failure }
}

/// One memcached server as `check --service` sees it: `version` (its latency) and `stats`.
struct MemcachedServerReport: Codable {
    /// `host:port`.
    var server: String
    /// Whether it answered.
    var up: Bool
    /// The `version` round trip, in milliseconds.
    var latencyMilliseconds: Double?
    /// `curr_items`.
    var items: Int?
    /// `get_hits / (get_hits + get_misses)`, when there were gets.
    var hitRate: Double?
    /// Why it is down.
    var error: String?

    /// Asks every server of `configuration` at once, each on a connection of its own.
    static func inspect(_ configuration: MemcachedClientConfiguration) async -> [MemcachedServerReport] {
        await withTaskGroup(of: (Int, MemcachedServerReport).self) { group in
            for (index, server) in configuration.servers.enumerated() {
                group.addTask { (index, await inspect(server)) }
            }
            var reports = [MemcachedServerReport?](repeating: nil, count: configuration.servers.count)
            for await (index, report) in group { reports[index] = report }
            return reports.compactMap { $0 }
        }
    }

    private static func inspect(_ server: MemcachedServerConfiguration) async -> MemcachedServerReport {
        var report = MemcachedServerReport(server: server.description, up: false)
        do throws(MemcachedError) {
            let connection = try await MemcachedConnection.connect(server)
            defer { Task { await connection.close() } }
            let started = ContinuousClock.now
            _ = try await connection.version()
            let elapsed = started.duration(to: .now)
            report.latencyMilliseconds = elapsed.inMilliseconds
            let stats = try await connection.stats()
            report.items = stats["curr_items"].flatMap { Int($0) }
            if let hits = stats["get_hits"].flatMap({ Double($0) }), let misses = stats["get_misses"].flatMap({ Double($0) }),
                hits + misses > 0
            {
                report.hitRate = hits / (hits + misses)
            }
            report.up = true
        } catch {
            report.error = "\(error.code): \(error.message)"
        }
        return report
    }
}

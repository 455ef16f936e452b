// Point-select throughput through `Database` at 4 concurrent tasks, side by
// side in one run with `pgbench -S -c 4 -j 2` on the same PostgreSQL server.
// Run in release:  swift run -c release sql-bench [seconds]
import Foundation
import PostgresBackend
import SQLCore
import TestServers

let seconds = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 10

func pgbench(_ arguments: [String]) async throws -> String {
    try await Commands.run("/usr/lib/postgresql/15/bin/pgbench", arguments).output
}

func ours(dsn: String, tasks: Int, duration: Duration) async throws -> Double {
    var config = DatabaseConfiguration(name: "bench")
    config.maxOpen = tasks
    config.maxIdle = tasks
    let db = Database(driver: PostgresDriver(), dsn: dsn, configuration: config)
    return try await withThrowingTaskGroup(of: Int.self) { group in
        group.addTask { try await db.run(); return 0 }
        while !db.isRunning { await Task.yield() }
        let deadline = ContinuousClock.now + duration
        let started = ContinuousClock.now
        for _ in 0..<tasks {
            group.addTask {
                var count = 0
                var random = SystemRandomNumberGenerator()
                while ContinuousClock.now < deadline {
                    let aid = Int64.random(in: 1...100_000, using: &random)
                    let rows = try await db.query("SELECT abalance FROM pgbench_accounts WHERE aid = ?", [.integer(aid)])
                    precondition(rows.count == 1)
                    count += 1
                }
                return count
            }
        }
        var total = 0
        for _ in 0..<tasks { total += try await group.next() ?? 0 }
        let elapsed = ContinuousClock.now - started
        await db.close()
        try await group.waitForAll()
        return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}

let cluster = try await PostgresCluster.start(standbys: 0)
defer { cluster.destroy() }
let server = cluster.primary
let target = ["-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres", "postgres"]
_ = try await pgbench(["-i", "-s", "1", "-q"] + target)
print("PostgreSQL point selects, 4 clients, \(seconds) s each, same server, same run (pgbench scale 1)")
let peerOutput = try await pgbench(["-S", "-n", "-c", "4", "-j", "2", "-T", String(seconds)] + target)
guard let line = peerOutput.split(separator: "\n").first(where: { $0.hasPrefix("tps =") }),
      let peer = Double(line.split(separator: " ")[2]) else {
    print("could not read pgbench's tps:\n\(peerOutput)")
    exit(1)
}
let mine = try await ours(dsn: server.dsn, tasks: 4, duration: .seconds(seconds))
print(String(format: "pgbench -S -c 4 -j 2        %10.0f tps", peer))
print(String(format: "Database + PostgresDriver   %10.0f tps", mine))
print(String(format: "ratio                       %10.2fx (goal >= 0.95x)", mine / peer))

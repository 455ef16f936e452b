// Point-select throughput through `Database` at 4 concurrent tasks, side by
// side in one run with the peer tool on the same server:
//   PostgreSQL: `pgbench -S -c 4 -j 2`;  MariaDB: `sysbench oltp_point_select --threads=4`.
// SQLite: 100,000 inserts (one batch; a statement each) and the rows read back, against the same
// work in C (peers/sqlite_peer.c, built by the benchmark): see SQLiteBench.swift.
// Run in release:  swift run -c release sql-bench [seconds] [sqlite|postgres|mariadb]
import BenchSupport
import Foundation
import MariaDBBackend
import PostgresBackend
import SQLCore
import TestServers

let arguments = Array(CommandLine.arguments.dropFirst())
let seconds = Int(arguments.first ?? "") ?? 10
let only = arguments.dropFirst().first

func benchPostgres() async throws {
    let cluster = try await PostgresCluster.start(standbys: 0)
    defer { cluster.destroy() }
    let server = cluster.primary
    let pgbench = "/usr/lib/postgresql/15/bin/pgbench"
    let target = ["-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres", "postgres"]
    try await Commands.run(pgbench, ["-i", "-s", "1", "-q"] + target)
    print("PostgreSQL point selects, 4 clients, \(seconds) s each, same server, same run (pgbench scale 1)")
    let peerStart = cpuTime(children: true)
    let output = try await Commands.run(pgbench, ["-S", "-n", "-c", "4", "-j", "2", "-T", String(seconds)] + target).output
    let peerCPU = cpuTime(children: true) - peerStart
    guard let peer = number(after: "tps =", in: output) else { throw TestServerError("could not read pgbench's tps:\n\(output)") }
    let ourStart = cpuTime(children: false)
    let mine = try await pointSelects(
        driver: PostgresDriver(), dsn: server.dsn, sql: "SELECT abalance FROM pgbench_accounts WHERE aid = ?",
        keys: 1...100_000, tasks: 4, duration: .seconds(seconds))
    report(peer: "pgbench -S -c 4 -j 2", peerRate: peer, peerCPU: peerCPU, ours: "Database + PostgresDriver", ourRate: mine,
           ourCPU: cpuTime(children: false) - ourStart, seconds: seconds)
}

func benchMariaDB() async throws {
    let server = try await MariaDBServer.start(name: "bench")
    defer { server.destroy() }
    let rows = 10_000
    let target = ["--mysql-host=127.0.0.1", "--mysql-port=\(server.port)", "--mysql-user=test", "--mysql-password=test",
                  "--mysql-db=test", "--tables=1", "--table-size=\(rows)"]
    try await Commands.run("/usr/bin/sysbench", ["oltp_point_select"] + target + ["prepare"])
    print("MariaDB point selects, 4 clients, \(seconds) s each, same server, same run (sysbench, \(rows) rows)")
    let peerStart = cpuTime(children: true)
    let output = try await Commands.run(
        "/usr/bin/sysbench", ["oltp_point_select"] + target + ["--threads=4", "--time=\(seconds)", "run"]).output
    let peerCPU = cpuTime(children: true) - peerStart
    // "    queries:   183112 (18311.25 per sec.)"
    let queries = output.split(separator: "\n").first { $0.contains("queries:") }.map(String.init) ?? ""
    guard let peer = number(after: "(", in: queries) else { throw TestServerError("could not read sysbench's rate:\n\(output)") }
    let ourStart = cpuTime(children: false)
    let mine = try await pointSelects(
        driver: MariaDBDriver(), dsn: server.dsn, sql: "SELECT c FROM sbtest1 WHERE id = ?",
        keys: 1...Int64(rows), tasks: 4, duration: .seconds(seconds))
    report(peer: "sysbench oltp_point_select -t 4", peerRate: peer, peerCPU: peerCPU, ours: "Database + MariaDBDriver", ourRate: mine,
           ourCPU: cpuTime(children: false) - ourStart, seconds: seconds)
}

if only == nil || only == "sqlite" { try await benchSQLite(rounds: 5, profile: arguments.dropFirst(2).first) }
if only == nil || only == "postgres" { try await benchPostgres() }
if only == nil || only == "mariadb" { try await benchMariaDB() }

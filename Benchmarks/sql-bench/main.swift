// The SQL hot path against the C clients' own tools and programs, side by side in
// one run, alternating rounds, each ratio the median over the rounds:
//   PostgreSQL point selects through `Database` (cooperative pool; the driver's executor)
//     vs `pgbench -S -c 4 -j 2` (simple and prepared); a 100,000-row batch vs a C program
//     using libpq's pipeline mode (peers/postgres_pipeline_peer.c);
//   MariaDB point selects vs `sysbench oltp_point_select --threads=4`; a 100,000-row batch
//     vs a C program using Connector/C's bulk binding (peers/mariadb_bulk_peer.c);
//   SQLite: 100,000 inserts (one batch; a statement each) and the rows read back vs the
//     same work in C (peers/sqlite_peer.c): see SQLiteBench.swift.
// The C peers are built here with cc.
// Run in release:  swift run -c release sql-bench [seconds] [sqlite|postgres|mariadb] [rounds]
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let seconds = Int(arguments.first ?? "") ?? 5
let only = arguments.dropFirst().first
let third = arguments.dropFirst(2).first
let rounds = Int(third ?? "") ?? 3
// `sql-bench 0 sqlite batch|each|select`, `sql-bench 20 postgres|mariadb executor|pool`: only our side, for a profiler
let profile = third.flatMap { Int($0) == nil ? $0 : nil }

let peers = FileManager.default.temporaryDirectory.appendingPathComponent("sql-bench-peers-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: peers, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: peers) }
if only == nil || only == "sqlite" { try await benchSQLite(rounds: 5, profile: profile) }
if only == nil || only == "postgres" { try await benchPostgres(seconds: seconds, rounds: rounds, folder: peers, profile: profile) }
if only == nil || only == "mariadb" { try await benchMariaDB(seconds: seconds, rounds: rounds, folder: peers, profile: profile) }

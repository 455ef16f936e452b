import Foundation
import MariaDBBackend
import Memcached
import NIOClientSupport
import PostgresBackend
import Redis
import SQLCore
import TestServers
import Testing

/// Every client pointed at a port where its own server is not: another kind of
/// real server, or one that closes at once, never speaks, greets with garbage
/// or sends bytes without end. Each ends within its own timeouts (2 s here)
/// with a typed error: never a crash, never a hang.
@Suite("clients pointed at the wrong server", .timeLimit(.minutes(5)))
struct WrongServerTests {
    enum Peer: String, CaseIterable, CustomStringConvertible {
        case redis, memcached, mariadb, closesOnAccept, neverSpeaks, greetsWithGarbage, endlessBytes
        var description: String { rawValue }

        /// Starts the peer; returns its port and how to stop it.
        func start() async throws -> (port: Int, stop: @Sendable () async -> Void) {
            switch self {
            case .redis:
                let server = try await RedisServer.shared()
                return (server.port, {})
            case .memcached:
                let server = try await MemcachedServer.start(name: "wrong-server")
                return (server.port, { server.process.destroy() })
            case .mariadb:
                let server = try await MariaDBServer.shared()
                return (server.port, {})
            case .closesOnAccept: return try await fake(.closeOnAccept)
            case .neverSpeaks: return try await fake(.answer(reply: [], closeAfterReply: false))
            case .greetsWithGarbage: return try await fake(.greet(Array("\u{1}\u{0}\u{0}\u{ff}garbage\r\n\u{0}".utf8), thenClose: false))
            case .endlessBytes: return try await fake(.endless(Array(repeating: UInt8(ascii: "A"), count: 65_536)))
            }
        }

        private func fake(_ behaviour: CannedReplyServer.Behaviour) async throws -> (port: Int, stop: @Sendable () async -> Void) {
            let server = try await CannedReplyServer.start(behaviour)
            return (server.port, { await server.stop() })
        }
    }

    /// A bound on each attempt: the 2 s timeouts, and room for a loaded machine.
    static let bound: Duration = .seconds(8)

    /// The error `attempt` ends with, or `nil` when it got an answer.
    static func failure<E: Error>(of attempt: () async throws(E) -> Void) async -> E? {
        do throws(E) {
            try await attempt()
            return nil
        } catch {
            return error
        }
    }

    /// Connects and runs `SELECT 1`.
    static func sqlOutcome(_ name: String, _ dsn: String) async -> SQLError? {
        await failure { () async throws(SQLError) in
            let connection: any SQLConnection
            if name == "postgres" {
                connection = try await PostgresDriver().connect(to: dsn)
            } else {
                connection = try await MariaDBDriver().connect(to: dsn)
            }
            _ = try await connection.query("SELECT 1")
            await connection.close()
        }
    }

    @Test(
        "PostgreSQL and MariaDB connections end within their connect timeout with a connection-class error",
        arguments: Peer.allCases)
    func sqlClients(peer: Peer) async throws {
        let (port, stop) = try await peer.start()
        defer { Task { await stop() } }
        for (name, dsn) in [
            ("postgres", "host=127.0.0.1 port=\(port) user=u password=pw dbname=d connect_timeout=2 sslmode=disable"),
            ("mariadb", "mysql://u:pw@127.0.0.1:\(port)/d?timeout=2s&readTimeout=2s"),
        ] {
            let started = ContinuousClock.now
            let error = await Self.sqlOutcome(name, dsn)
            #expect(error?.kind == .connection, "\(name) against \(peer): \(String(describing: error))")
            #expect(error.map { !$0.description.contains("pw") } ?? true, "\(name) against \(peer)")
            #expect(started.duration(to: .now) < Self.bound, "\(name) against \(peer) took \(started.duration(to: .now))")
        }
    }

    @Test(
        "Redis and memcached commands, plain or over TLS, end within their timeouts with a typed error",
        arguments: Peer.allCases, [false, true])
    func keyValueClients(peer: Peer, overTLS: Bool) async throws {
        // Not a wrong server: plain Redis to a real redis-server, plain memcached to a real memcached.
        let plainRedisFits = peer == .redis && !overTLS
        let plainMemcachedFits = peer == .memcached && !overTLS
        let (port, stop) = try await peer.start()
        defer { Task { await stop() } }
        // Verification off: what must fail is the transport, not the check of a certificate.
        let tls = overTLS ? ClientTLS(verification: .none) : nil
        var redis = RedisConfiguration(port: port)
        redis.connectTimeout = .seconds(2)
        redis.readTimeout = .seconds(2)
        redis.tls = tls
        var started = ContinuousClock.now
        if !plainRedisFits {
            let redisError = await Self.failure { () async throws(RedisError) in
                let connection = try await RedisConnection.connect(redis)
                _ = try await connection.get("key")
                await connection.close()
            }
            #expect(redisError != nil, "redis against \(peer), TLS \(overTLS): an answer")
            if overTLS && peer == .closesOnAccept {
                // Closed during the handshake: nothing was sent, as with a refused connection (or, when the
                // loaded fake accepts late, the connect's timeout); never a TLS refusal.
                let codes: Set<RedisError.Code> = [.connectFailed, .connectTimeout]
                #expect(redisError.map { codes.contains($0.code) } == true, "\(String(describing: redisError))")
            }
            #expect(started.duration(to: .now) < Self.bound, "redis against \(peer) took \(started.duration(to: .now))")
        }
        guard !plainMemcachedFits else { return }
        var memcached = MemcachedServerConfiguration(port: port)
        memcached.connectTimeout = .seconds(2)
        memcached.readTimeout = .seconds(2)
        memcached.tls = tls
        started = .now
        let memcachedError = await Self.failure { () async throws(MemcachedError) in
            let connection = try await MemcachedConnection.connect(memcached)
            _ = try await connection.get("key")
            await connection.close()
        }
        #expect(memcachedError != nil, "memcached against \(peer), TLS \(overTLS): an answer")
        #expect(memcachedError?.isConnectionError == true, "memcached against \(peer): \(String(describing: memcachedError))")
        #expect(started.duration(to: .now) < Self.bound, "memcached against \(peer) took \(started.duration(to: .now))")
    }
}

#if canImport(Glibc)
    import SQLCore
    import SQLTestSupport
    import TestServers
    import Testing

    @testable import PostgresBackend

    /// What libpq puts on the connection's socket for a dead peer, read back from the kernel.
    @Suite("PostgreSQL: keepalives and TCP_USER_TIMEOUT on the socket", .timeLimit(.minutes(1)))
    struct PostgresDeadPeerSocketTests {
        func options(_ extra: String) async throws -> DeadPeerOptions? {
            let server = try await PostgresCluster.shared().primary
            let connection = try #require(try await PostgresDriver().connect(to: server.dsn + extra) as? PostgresConnection)
            defer { Task { await connection.close() } }
            return DeadPeerOptions(of: connection.socketDescriptor)
        }

        @Test("by default: a probe after 10 s idle, every 5 s, 3 unanswered; 30 s unacknowledged; a DSN's own keywords win")
        func defaultsAndDSN() async throws {
            #expect(try await options("") == .clusterSQLDefaults)
            var set = DeadPeerOptions.clusterSQLDefaults
            set.idleSeconds = 60
            set.userTimeoutMilliseconds = 5_000
            #expect(try await options(" keepalives_idle=60 tcp_user_timeout=5000") == set)
            #expect(try await options(" keepalives=0")?.keepalive == false)
        }
    }
#endif

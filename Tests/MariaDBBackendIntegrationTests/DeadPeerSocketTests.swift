#if canImport(Glibc)
    import SQLCore
    import SQLTestSupport
    import TestServers
    import Testing

    @testable import MariaDBBackend

    /// What the driver puts on Connector/C's socket for a dead peer, read back from the kernel.
    @Suite("MariaDB: keepalives and TCP_USER_TIMEOUT on the socket", .timeLimit(.minutes(1)))
    struct MariaDBDeadPeerSocketTests {
        func options(_ query: String) async throws -> DeadPeerOptions? {
            let server = try await MariaDBServer.shared()
            let connection = try #require(try await MariaDBDriver().connect(to: server.dsn + query) as? MariaDBConnection)
            defer { Task { await connection.close() } }
            return DeadPeerOptions(of: connection.socketDescriptor)
        }

        @Test("by default: a probe after 10 s idle, every 5 s, 3 unanswered; 30 s unacknowledged; the DSN's tcpUserTimeout wins")
        func defaultsAndDSN() async throws {
            #expect(try await options("") == .clusterSQLDefaults)
            var set = DeadPeerOptions.clusterSQLDefaults
            set.userTimeoutMilliseconds = 5_000
            #expect(try await options("?tcpUserTimeout=5s") == set)
            // Turned off: the socket as Connector/C made it (its own keepalive, on the system's timings).
            let off = try await options("?tcpUserTimeout=0")
            #expect(off?.userTimeoutMilliseconds == 0 && off?.idleSeconds != 10, "\(String(describing: off))")
        }
    }
#endif

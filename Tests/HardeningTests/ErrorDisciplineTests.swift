import Testing

@testable import Memcached
@testable import Redis

/// One error discipline across the clients: every code says at its definition whether it
/// concerns the connection, and codes compare by identity, not by name.
@Suite("Error codes: classified where defined, compared by identity")
struct ErrorDisciplineTests {
    @Test("Redis: exactly the transport failures are connection-class")
    func redisClassification() {
        let connection: [RedisError.Code] = [
            .connectFailed, .tlsFailed, .connectTimeout, .readTimeout, .writeTimeout, .connectionClosed, .protocolViolation,
        ]
        let other: [RedisError.Code] = [
            .server, .unexpectedReply, .invalidConfiguration, .poolTimeout, .poolUnavailable, .sentinelsUnreachable,
            .masterUnknown, .failoverInProgress, .noReplicaAvailable, .notDurable, .clientClosed, .misuse, .masterChanged,
            .cancelled,
        ]
        for code in connection { #expect(RedisError(code, message: "").isConnectionError, "\(code)") }
        for code in other { #expect(!RedisError(code, message: "").isConnectionError, "\(code)") }
        #expect(Set(connection + other).count == connection.count + other.count)
    }

    @Test("memcached: exactly the transport failures are connection-class")
    func memcachedClassification() {
        let connection: [MemcachedError.Code] = [
            .protocolViolation, .connectFailed, .tlsFailed, .connectTimeout, .readTimeout, .writeTimeout, .connectionLost,
        ]
        let other: [MemcachedError.Code] = [
            .notStored, .exists, .notFound, .malformedKey, .tooLarge, .server, .client, .unavailable, .clientClosed,
            .invalidConfiguration, .cancelled,
        ]
        for code in connection { #expect(MemcachedError(code, message: "").isConnectionError, "\(code)") }
        for code in other { #expect(!MemcachedError(code, message: "").isConnectionError, "\(code)") }
        #expect(Set(connection + other).count == connection.count + other.count)
    }

    @Test("a code equals only itself: a new code of the same name is another code (SQLError: SQLCoreTests)")
    func identity() {
        #expect(RedisError.Code("server", connectionClass: false) != .server)
        #expect(MemcachedError.Code("notFound", connectionClass: false) != .notFound)
        #expect(Set([RedisError.Code.server, .server, .misuse]).count == 2)
    }
}

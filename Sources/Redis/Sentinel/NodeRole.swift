import Logging
import NIOCore
import RESP

/// What a data node says it is, from its `ROLE` reply.
enum NodeRole: Sendable, Equatable {
    /// `master`.
    case master
    /// `slave`, following `master`; `connected` when its link is up.
    case replica(master: SentinelAddress?, connected: Bool)
    /// Anything else (a sentinel, garbage).
    case other(String)
    /// It could not be asked.
    case unreachable(RedisError)

    /// Reads a `ROLE` reply.
    init(roleReply reply: RESPValue) {
        guard let items = reply.elements, let kind = items.first?.string else {
            self = .other(String(describing: reply).prefix(80).description)
            return
        }
        switch kind {
        case "master":
            self = .master
        case "slave", "replica":
            var master: SentinelAddress?
            if items.count > 2, let host = items[1].string, case .integer(let port) = items[2] {
                master = SentinelAddress(host: host, port: Int(port))
            }
            self = .replica(master: master, connected: items.count > 3 && items[3].string == "connected")
        default:
            self = .other(kind)
        }
    }

    /// Asks the node at `address` with a connection of its own (no pool is made for
    /// a node before it is verified), everything within `timeout`.
    static func probe(
        _ address: SentinelAddress, configuration: SentinelConfiguration, timeout: Duration, on group: any EventLoopGroup, logger: Logger
    ) async -> NodeRole {
        var settings = configuration.dataNode(address)
        settings.connectTimeout = timeout
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(settings, on: group, logger: logger)
        } catch {
            return .unreachable(error)
        }
        let reply = await connection.send(RedisCommand("ROLE"), within: timeout)
        await connection.close()
        switch reply {
        case .success(let value): return NodeRole(roleReply: value)
        case .failure(let error): return .unreachable(error)
        }
    }
}

import ConnectionKit
import RESP

/// Commands on the current master of one master name, following failovers
/// (``SentinelClient/master(_:)``, ``SentinelClient/master(_:durable:)``); every typed helper of ``RedisCommandRunner`` works on it.
public struct SentinelMaster: RedisCommandRunner {
    let client: SentinelClient
    /// The master name.
    public let name: String
    /// `WAIT` after each command, or `nil`.
    public let durability: DurableWrites?
    /// Looked up once, not per command; `nil` for a name the client does not follow.
    let master: FollowedMaster?

    init(client: SentinelClient, name: String, durability: DurableWrites?) {
        self.client = client
        self.name = name
        self.durability = durability
        master = client.masters[name]
    }

    /// Sends one command to the master; with ``durability``, also `WAIT` on the same
    /// connection, and ``RedisError/Code/notDurable`` when too few replicas acknowledged.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        guard let master else { throw client.notFollowed(name) }
        try RedisPool.refuseSessionCommand(command, endpoint: "")
        return try await client.sendToMaster(master, command, durability: durability)
    }
}

/// Read commands on the replicas of one master name (``SentinelClient/replicas(_:)``).
public struct SentinelReplicas: RedisCommandRunner {
    let client: SentinelClient
    /// The master name.
    public let name: String
    /// Looked up once, not per command; `nil` for a name the client does not follow.
    let master: FollowedMaster?

    init(client: SentinelClient, name: String) {
        self.client = client
        self.name = name
        master = client.masters[name]
    }

    /// Sends one command to the next replica that passes the checks (or as configured when none does).
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        guard let master else { throw client.notFollowed(name) }
        try RedisPool.refuseSessionCommand(command, endpoint: "")
        return try await client.sendToReplica(master, command)
    }
}

/// A connection to a master, borrowed for the body of ``SentinelClient/withMaster(_:_:)``.
///
/// Commands sent through the lease itself are fenced and watched: once the client
/// serves another master than the one the lease was borrowed from, a command is refused
/// before anything is sent (``RedisError/Code/masterChanged``: it did not run), whatever
/// the order in which the old master's connections get closed; a `READONLY` reply closes
/// the master's connections and triggers a check. ``connection`` gives the raw connection,
/// which is not fenced.
public struct SentinelLease: RedisCommandRunner {
    let client: SentinelClient
    let master: FollowedMaster
    let serving: FollowedMaster.Serving
    let lease: RedisPool.Lease
    var pool: RedisPool { serving.pool }

    /// The borrowed connection.
    public var connection: RedisConnection { lease.connection }
    /// The master name.
    public var masterName: String { master.name }
    /// The master's address when the lease was made.
    public var address: SentinelAddress { serving.address }

    /// Sends one command on the borrowed connection, if the client still serves the master the
    /// lease was borrowed from (else ``RedisError/Code/masterChanged``, nothing sent).
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        guard master.serving?.generation == serving.generation else {
            throw RedisError(
                .masterChanged,
                message:
                    "the client no longer serves master \(serving.address) of \(master.name), the one this lease was borrowed from; nothing was sent",
                endpoint: serving.address.description, command: command.name)
        }
        let result = await lease.connection.sendOne(command)
        if case .failure(let error) = result { await client.failed(error, on: serving, of: master) }
        return try result.get()
    }
}

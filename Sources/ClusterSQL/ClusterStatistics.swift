import ConnectionKit
import Foundation
import SQLCore

/// A snapshot of a cluster's figures (``ClusterDriver/statistics()``); its JSON
/// keys are stable names (`Connections`, `Errors`, `LastSuccess`...) that
/// dashboards may rely on.
public struct ClusterStatistics: Sendable, Codable, Hashable {
    /// The cluster's name.
    public var cluster: String
    /// When the driver was created (`FirstInstantiated`).
    public var firstInstantiated: Date
    /// The nodes, sorted by name.
    public var nodes: [NodeStatistics]

    enum CodingKeys: String, CodingKey {
        case cluster = "Cluster"
        case firstInstantiated = "FirstInstantiated"
        case nodes = "Nodes"
    }
}

/// Whether a node takes traffic.
public enum NodeHealth: String, Sendable, Codable, Hashable {
    /// Serving.
    case up
    /// Taken out after a connection-class failure; a probe is pending.
    case ejected
    /// A probe is checking whether it is back.
    case probing

    init(_ state: CircuitState) {
        switch state {
        case .closed: self = .up
        case .open: self = .ejected
        case .halfOpen: self = .probing
        }
    }
}

/// One node's figures.
public struct NodeStatistics: Sendable, Codable, Hashable {
    /// The node's name.
    public var name: String
    /// The backend driver's name.
    public var driver: String
    /// The node's DSN with any password replaced by `***`.
    public var dsn: String
    /// Connections opened on the node, checks and probes excluded (`Connections`).
    public var connections: Int
    /// Failed connects and connection-class statement failures (`Errors`).
    public var errors: Int
    /// Statements run on the node.
    public var statements: Int
    /// When a connect or statement last succeeded (`LastSuccess`).
    public var lastSuccess: Date?
    /// When the last error happened (`LastError`).
    public var lastError: Date?
    /// The last error's description, free of passwords (`LastErrorMessage`).
    public var lastErrorMessage: String?
    /// The peak-sensitive average of statement round trips, in milliseconds.
    public var latencyMilliseconds: Double?
    /// The same average for connects.
    public var connectMilliseconds: Double?
    /// Statements and connects in progress.
    public var inFlight: Int
    /// Up, ejected or probing.
    public var state: NodeHealth
    /// The role last detected.
    public var role: NodeRole
    /// Seconds behind the cluster's writes at the last check (`ReplicationLag.seconds`); `nil`
    /// when not measured (not checked yet, or a backend that does not measure time).
    public var replicationLagSeconds: Double?
    /// WAL bytes not replayed yet at the last check (PostgreSQL standbys).
    public var bytesBehind: Int64?
    /// Write sets received and not applied at the last check (Galera).
    public var transactionsBehind: Int?
    /// Behind by an amount the node could not tell at the last check (`ReplicationLag.isBehindByUnknown`).
    public var isBehindByUnknown: Bool

    /// The replication lag these figures hold, or `nil` when it was not measured.
    public var replicationLag: ReplicationLag? {
        guard replicationLagSeconds != nil || bytesBehind != nil || transactionsBehind != nil || isBehindByUnknown else {
            return nil
        }
        return ReplicationLag(
            seconds: replicationLagSeconds, bytesBehind: bytesBehind, transactionsBehind: transactionsBehind,
            isBehindByUnknown: isBehindByUnknown)
    }

    /// A node's figures.
    init(
        name: String, driver: String, dsn: String, connections: Int, errors: Int, statements: Int, lastSuccess: Date?,
        lastError: Date?, lastErrorMessage: String?, latencyMilliseconds: Double?, connectMilliseconds: Double?, inFlight: Int,
        state: NodeHealth, role: NodeRole, replicationLagSeconds: Double? = nil, bytesBehind: Int64? = nil,
        transactionsBehind: Int? = nil, isBehindByUnknown: Bool = false
    ) {
        self.name = name
        self.driver = driver
        self.dsn = dsn
        self.connections = connections
        self.errors = errors
        self.statements = statements
        self.lastSuccess = lastSuccess
        self.lastError = lastError
        self.lastErrorMessage = lastErrorMessage
        self.latencyMilliseconds = latencyMilliseconds
        self.connectMilliseconds = connectMilliseconds
        self.inFlight = inFlight
        self.state = state
        self.role = role
        self.replicationLagSeconds = replicationLagSeconds
        self.bytesBehind = bytesBehind
        self.transactionsBehind = transactionsBehind
        self.isBehindByUnknown = isBehindByUnknown
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case driver = "Driver"
        case dsn = "DSN"
        case connections = "Connections"
        case errors = "Errors"
        case statements = "Statements"
        case lastSuccess = "LastSuccess"
        case lastError = "LastError"
        case lastErrorMessage = "LastErrorMessage"
        case latencyMilliseconds = "LatencyAverageMs"
        case connectMilliseconds = "ConnectAverageMs"
        case inFlight = "InFlight"
        case state = "State"
        case role = "Role"
        case replicationLagSeconds = "ReplicationLagSeconds"
        case bytesBehind = "BytesBehind"
        case transactionsBehind = "TransactionsBehind"
        case isBehindByUnknown = "BehindByUnknown"
    }

    /// Decodes what ``encode(to:)`` writes; the replication keys may be absent (older output).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        driver = try container.decode(String.self, forKey: .driver)
        dsn = try container.decode(String.self, forKey: .dsn)
        connections = try container.decode(Int.self, forKey: .connections)
        errors = try container.decode(Int.self, forKey: .errors)
        statements = try container.decode(Int.self, forKey: .statements)
        lastSuccess = try container.decodeIfPresent(Date.self, forKey: .lastSuccess)
        lastError = try container.decodeIfPresent(Date.self, forKey: .lastError)
        lastErrorMessage = try container.decodeIfPresent(String.self, forKey: .lastErrorMessage)
        latencyMilliseconds = try container.decodeIfPresent(Double.self, forKey: .latencyMilliseconds)
        connectMilliseconds = try container.decodeIfPresent(Double.self, forKey: .connectMilliseconds)
        inFlight = try container.decode(Int.self, forKey: .inFlight)
        state = try container.decode(NodeHealth.self, forKey: .state)
        role = try container.decode(NodeRole.self, forKey: .role)
        replicationLagSeconds = try container.decodeIfPresent(Double.self, forKey: .replicationLagSeconds)
        bytesBehind = try container.decodeIfPresent(Int64.self, forKey: .bytesBehind)
        transactionsBehind = try container.decodeIfPresent(Int.self, forKey: .transactionsBehind)
        isBehindByUnknown = try container.decodeIfPresent(Bool.self, forKey: .isBehindByUnknown) ?? false
    }

    /// Encodes every key, absent values as `null`, so that every snapshot has the same keys.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(driver, forKey: .driver)
        try container.encode(dsn, forKey: .dsn)
        try container.encode(connections, forKey: .connections)
        try container.encode(errors, forKey: .errors)
        try container.encode(statements, forKey: .statements)
        try container.encode(lastSuccess, forKey: .lastSuccess)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(lastErrorMessage, forKey: .lastErrorMessage)
        try container.encode(latencyMilliseconds, forKey: .latencyMilliseconds)
        try container.encode(connectMilliseconds, forKey: .connectMilliseconds)
        try container.encode(inFlight, forKey: .inFlight)
        try container.encode(state, forKey: .state)
        try container.encode(role, forKey: .role)
        try container.encode(replicationLagSeconds, forKey: .replicationLagSeconds)
        try container.encode(bytesBehind, forKey: .bytesBehind)
        try container.encode(transactionsBehind, forKey: .transactionsBehind)
        try container.encode(isBehindByUnknown, forKey: .isBehindByUnknown)
    }
}

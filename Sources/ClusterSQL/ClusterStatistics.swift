import ConnectionKit
import Foundation

/// A snapshot of a cluster's figures (``ClusterDriver/statistics()``), with
/// the clustersql seed's expvar names as its JSON keys.
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
    }

    /// Encodes every key, absent values as `null`, as the seed's expvar output has them.
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
    }
}

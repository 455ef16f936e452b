import Metrics
import Redis
import TestServers
import TestSupport
import Testing

/// Starts a topology for `body` and tears it down afterwards, by pid.
func withTopology<T>(
    _ name: String, replicas: Int = 1, dataPassword: String? = nil, sentinelPassword: String? = nil, tls: ServerTLS? = nil,
    _ body: (SentinelTopology) async throws -> T
) async throws -> T {
    let topology = try await SentinelTopology.start(
        masterName: name, replicas: replicas, dataPassword: dataPassword, sentinelPassword: sentinelPassword, tls: tls)
    defer { topology.destroy() }
    return try await body(topology)
}

/// The configuration a user would write for `topology`, with `configure` applied.
func sentinelConfiguration(
    _ topology: SentinelTopology, sentinels: [String]? = nil, _ configure: (inout SentinelConfiguration) -> Void = { _ in }
) -> SentinelConfiguration {
    var configuration = SentinelConfiguration(sentinels: sentinels ?? topology.sentinelAddresses, masterNames: [topology.masterName])
    configuration.sentinelPassword = topology.sentinelPassword
    configuration.dataNodes.password = topology.dataPassword
    configuration.dataNodes.readTimeout = .seconds(2)
    configure(&configuration)
    return configuration
}

/// A client for `topology`, running while `body` runs.
func withSentinelClient<T: Sendable>(
    _ topology: SentinelTopology, sentinels: [String]? = nil, metrics: (any MetricsFactory)? = nil,
    _ configure: (inout SentinelConfiguration) -> Void = { _ in }, _ body: @Sendable (SentinelClient) async throws -> T
) async throws -> T {
    let client = try SentinelClient(
        configuration: sentinelConfiguration(topology, sentinels: sentinels, configure), metricsFactory: metrics)
    return try await whileRunning(client) { try await body(client) }
}

/// Polls until `condition` holds, every `interval`, at most `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(15), every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out after \(timeout) waiting until \(what)")
    throw TestServerError("timed out waiting until \(what)")
}

/// An address on 127.0.0.1 where nothing listens.
func deadAddress() throws -> String {
    "127.0.0.1:\(try LoopbackPorts.free())"
}

extension RedisServer {
    /// The server's `host:port` as the sentinels name it.
    var sentinelAddress: SentinelAddress { SentinelAddress(host: "127.0.0.1", port: port) }
}

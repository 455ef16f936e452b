import Metrics

/// One node's figures in swift-metrics, with `cluster` and `node` dimensions.
///
/// `clustersql_node_connections_total`, `clustersql_node_errors_total`,
/// `clustersql_node_statements_total`, `clustersql_node_latency_seconds` (a
/// timer of statement round trips), `clustersql_node_in_flight`,
/// `clustersql_node_up` (1 serving, 0 ejected or probing), and, where the
/// backend measures them, `clustersql_node_replication_lag_seconds` and
/// `clustersql_node_transactions_behind`.
struct NodeMetrics: Sendable {
    let connections: Counter
    let errors: Counter
    let statements: Counter
    let latency: Metrics.Timer
    let inFlight: Gauge
    let up: Gauge
    let replicationLag: Gauge
    let transactionsBehind: Gauge

    init(cluster: String, node: String, factory: any MetricsFactory) {
        let dimensions = [("cluster", cluster), ("node", node)]
        connections = Counter(label: "clustersql_node_connections_total", dimensions: dimensions, factory: factory)
        errors = Counter(label: "clustersql_node_errors_total", dimensions: dimensions, factory: factory)
        statements = Counter(label: "clustersql_node_statements_total", dimensions: dimensions, factory: factory)
        latency = Metrics.Timer(
            label: "clustersql_node_latency_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        inFlight = Gauge(label: "clustersql_node_in_flight", dimensions: dimensions, factory: factory)
        up = Gauge(label: "clustersql_node_up", dimensions: dimensions, factory: factory)
        up.record(1)
        replicationLag = Gauge(label: "clustersql_node_replication_lag_seconds", dimensions: dimensions, factory: factory)
        transactionsBehind = Gauge(label: "clustersql_node_transactions_behind", dimensions: dimensions, factory: factory)
    }
}

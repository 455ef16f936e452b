import SQLCore

/// What an open asks of a cluster: the kind of node, and how fresh it must be.
///
/// Written in the DSN of ``ClusterDriver/connect(to:)`` as items separated by
/// spaces or `&`: `target=` (or libpq's `target_session_attrs=`, or the role
/// alone) and the replication limits `max_replication_lag=` (a duration such
/// as `500ms` or `2s`) and `max_transactions_behind=`. An item left out takes
/// the cluster's default.
struct OpenRequest: Sendable, Hashable {
    var target: TargetRole
    var limits: ReplicationLimits

    /// The request `dsn` makes of a cluster whose defaults are `configuration`'s.
    init(dsn: String, defaults configuration: ClusterDriverConfiguration) throws(SQLError) {
        target = configuration.target
        limits = configuration.replicationLimits
        let items = dsn.split(whereSeparator: { $0 == " " || $0 == "&" || $0 == "\t" || $0 == "\n" })
        for item in items {
            guard let equals = item.firstIndex(of: "=") else {
                target = try Self.role(String(item))
                continue
            }
            let key = String(item[..<equals])
            let value = String(item[item.index(after: equals)...])
            switch key {
            case "target", "target_session_attrs":
                target = try Self.role(value)
            case "max_replication_lag", "max_lag":
                guard let lag = DurationText.parse(value) else {
                    throw Self.invalid("max_replication_lag must be a positive duration such as 500ms or 2s")
                }
                limits.maxLag = lag
            case "max_transactions_behind":
                guard let behind = Int(value), behind >= 0 else {
                    throw Self.invalid("max_transactions_behind must be a whole number, 0 or more")
                }
                limits.maxTransactionsBehind = behind
            default:
                throw Self.invalid(
                    "unknown cluster DSN key \(DSNRedaction.redact(key)); known: target, max_replication_lag, max_transactions_behind")
            }
        }
    }

    init(target: TargetRole, limits: ReplicationLimits = .unlimited) {
        self.target = target
        self.limits = limits
    }

    private static func role(_ name: String) throws(SQLError) -> TargetRole {
        guard let target = TargetRole(rawValue: name) else {
            // Redacted: a node DSN passed here by mistake would carry its password.
            let known = TargetRole.allCases.map(\.rawValue).joined(separator: ", ")
            throw invalid("unknown target role \(DSNRedaction.redact(name)); expected one of \(known)")
        }
        return target
    }

    private static func invalid(_ message: String) -> SQLError { SQLError(.invalidConfiguration, message: message) }
}

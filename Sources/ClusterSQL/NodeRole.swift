import SQLCore

/// The kind of node an open asks for, with libpq's `target_session_attrs` names.
public enum TargetRole: String, Sendable, Codable, Hashable, CaseIterable, CustomStringConvertible {
    /// Any serving node.
    case any
    /// A node that accepts writes.
    case readWrite = "read-write"
    /// A node that does not accept writes (a standby or a read-only primary).
    case readOnly = "read-only"
    /// A node that is not a standby.
    case primary
    /// A standby.
    case standby
    /// A standby when one is serving, otherwise any serving node.
    case preferStandby = "prefer-standby"

    /// Whether a node with `role` can serve this target. `NodeRole.unknown`
    /// is accepted by ``any`` and ``preferStandby`` only; for the other targets
    /// an open checks the role on the new connection before using it.
    public func accepts(_ role: NodeRole) -> Bool {
        switch (self, role) {
        case (_, .notReady): false
        case (.any, _), (.preferStandby, _): true
        case (.readWrite, .primary): true
        case (.readOnly, .readOnlyPrimary), (.readOnly, .standby): true
        case (.primary, .primary), (.primary, .readOnlyPrimary): true
        case (.standby, .standby): true
        default: false
        }
    }

    /// Whether a role must be known (checked on the connection) before the node serves this target.
    var needsKnownRole: Bool { self != .any && self != .preferStandby }

    /// The libpq name.
    public var description: String { rawValue }
}

/// The faults a ``FaultInjectingDriver`` adds to the database behind it.
public struct Faults: Sendable, Hashable {
    /// Added before every connect and every statement (a slow network or server).
    public var latency: Duration = .zero
    /// Connects fail with `connectionFailed`, and statements on open
    /// connections fail with `connectionLost`, breaking them (a dead server).
    public var down: Bool = false
    /// The share of statements, 0 to 1, that fail with `connectionLost` after
    /// reaching the database (the reply is lost; the statement may have run).
    public var statementFailureRate: Double = 0
    /// Connects and statements wait this long, or until cancelled, and then
    /// fail with `timeout` (a stopped server that accepts but never answers).
    public var hang: Duration?

    /// No faults.
    public init() {}

    /// Only `latency`.
    public static func slow(_ latency: Duration) -> Faults {
        var faults = Faults()
        faults.latency = latency
        return faults
    }

    /// A dead server.
    public static var dead: Faults {
        var faults = Faults()
        faults.down = true
        return faults
    }

    /// A server that never answers, for `duration` per call.
    public static func hanging(for duration: Duration) -> Faults {
        var faults = Faults()
        faults.hang = duration
        return faults
    }
}

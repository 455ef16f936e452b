import Tracing

/// Where a client's spans go: a swift-distributed-tracing `Tracer`, or nowhere.
///
/// Every client of the package takes one (the SQL drivers, `ClusterDriver`, the
/// Redis, Sentinel and memcached configurations). The default is the tracer
/// bootstrapped with `InstrumentationSystem` when the configuration is made, so
/// bootstrap first; with none bootstrapped, or with the no-op tracer, nothing is
/// traced and a call costs one branch. Spans follow OpenTelemetry's database
/// conventions and never carry parameter values, keys' values or secrets.
public struct TracingConfiguration: Sendable, Hashable {
    /// The tracer; `nil` (or the no-op tracer): no spans.
    public var tracer: (any Tracer)?

    /// Spans to `tracer` (by default, the tracer `InstrumentationSystem` has now).
    public init(tracer: (any Tracer)? = InstrumentationSystem.tracer) {
        self.tracer = tracer
    }

    /// No spans, whatever is bootstrapped.
    public static var disabled: TracingConfiguration { TracingConfiguration(tracer: nil) }

    /// Whether spans are made: a tracer other than the no-op one is set.
    public var isEnabled: Bool { activeTracer != nil }

    /// The tracer when it records anything.
    package var activeTracer: (any Tracer)? {
        guard let tracer, !(tracer is NoOpTracer) else { return nil }
        return tracer
    }

    /// Two configurations are equal when both trace or both do not, to tracers of the same type
    /// (tracers themselves cannot be compared).
    public static func == (lhs: TracingConfiguration, rhs: TracingConfiguration) -> Bool {
        switch (lhs.activeTracer, rhs.activeTracer) {
        case (nil, nil): true
        case (let left?, let right?): type(of: left) == type(of: right)
        default: false
        }
    }

    /// Hashes whether it traces and the tracer's type.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(activeTracer.map { ObjectIdentifier(type(of: $0)) })
    }
}

/// One client's spans toward one server: the attributes every span of its calls carries
/// (`db.system.name`, `server.address`, `server.port`, `db.namespace`), and the span around a call.
/// Made only when tracing is on (``init(_:system:address:port:namespace:)`` is `nil` otherwise), so an
/// untraced client holds `nil` and pays one branch per call.
package struct ClientSpans: Sendable {
    let tracer: any Tracer
    /// `db.system.name`: `postgresql`, `mariadb`, `sqlite`, `redis`, `memcached`, or the package's own `clustersql`.
    package let system: String
    package let address: String?
    package let port: Int?
    package let namespace: String?

    /// Spans for a client of `system` at `address`:`port` (its database or index as `namespace`); `nil` when
    /// `configuration` does not trace.
    package init?(_ configuration: TracingConfiguration, system: String, address: String?, port: Int?, namespace: String?) {
        guard let tracer = configuration.activeTracer else { return nil }
        self.tracer = tracer
        self.system = system
        self.address = address
        self.port = port
        self.namespace = namespace
    }

    /// Runs `body` in a client span named `operation` (and the namespace, when there is one): the
    /// `db.operation.name`, the server and `extra` attributes. A thrown error sets the span's status,
    /// `error.type` (from `errorType`, else the error's type name) and an exception event that
    /// carries that type only: a server's message may quote a value (PostgreSQL's `invalid input
    /// syntax for type integer: "…"`, MariaDB's `Duplicate entry '…'`), so it never enters a span.
    package nonisolated(nonsending) func span<T, Failure: Error>(
        _ operation: String, kind: SpanKind = .client, extra: (inout SpanAttributes) -> Void = { _ in },
        errorType: ((Failure) -> String)? = nil, _ body: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        let span = tracer.startSpan(namespace.map { "\(operation) \($0)" } ?? operation, ofKind: kind)
        span.updateAttributes { attributes in
            attributes["db.system.name"] = system
            attributes["db.operation.name"] = operation
            if let namespace { attributes["db.namespace"] = namespace }
            if let address { attributes["server.address"] = address }
            if let port { attributes["server.port"] = port }
            extra(&attributes)
        }
        defer { span.end() }
        do throws(Failure) {
            return try await body()
        } catch {
            Self.recordFailure(on: span, type: errorType?(error) ?? String(describing: type(of: error)))
            throw error
        }
    }

    /// Marks `span` failed with an error of `type`, recording the type alone (see ``span(_:kind:extra:errorType:_:)``).
    package static func recordFailure(on span: any Span, type: String) {
        span.attributes["error.type"] = type
        span.recordError(RecordedFailure(type: type))
        span.setStatus(SpanStatus(code: .error))
    }
}

/// The error a span records: its type, without the message.
struct RecordedFailure: Error, CustomStringConvertible {
    let type: String
    var description: String { type }
}

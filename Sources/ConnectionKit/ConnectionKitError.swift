/// An error raised by the connection layer itself (not by a connection).
public struct ConnectionKitError: Error, Sendable, CustomStringConvertible, Hashable {
    /// What went wrong. Extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name.
        public let name: String
        /// Creates a code.
        package init(_ name: String) { self.name = name }
        /// The name.
        public var description: String { name }

        /// The circuit breaker is open: calls fail at once until a probe succeeds.
        public static let circuitOpen = Code("circuitOpen")
        /// No connection became available within the pool's get timeout.
        public static let poolTimeout = Code("poolTimeout")
        /// The pool was closed.
        public static let shutdown = Code("shutdown")
        /// The caller would have to wait, but the pool's `run()` is not running to time the wait out.
        public static let notRunning = Code("notRunning")
        /// The waiting task was cancelled.
        public static let cancelled = Code("cancelled")
    }

    /// The code.
    public var code: Code
    /// The pool or breaker the error concerns.
    public var source: String
    /// A one-line explanation with the figures that matter.
    public var message: String

    /// Creates an error.
    @usableFromInline package init(_ code: Code, source: String, message: String) {
        self.code = code
        self.source = source
        self.message = message
    }

    /// `source: code: message`.
    public var description: String { "\(source): \(code): \(message)" }
}

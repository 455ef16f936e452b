/// An error raised by the connection layer itself (not by a connection). Each client
/// says it in its own error type (`SQLError`, `RedisError`, `MemcachedError`).
@usableFromInline package struct ConnectionKitError: Error, Sendable, CustomStringConvertible, Hashable {
    /// What went wrong. Extensible.
    @usableFromInline package struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name.
        @usableFromInline package let name: String
        /// Creates a code.
        @usableFromInline package init(_ name: String) { self.name = name }
        /// The name.
        @usableFromInline package var description: String { name }

        /// The circuit breaker is open: calls fail at once until a probe succeeds.
        @usableFromInline package static let circuitOpen = Code("circuitOpen")
        /// No connection became available within the pool's get timeout.
        @usableFromInline package static let poolTimeout = Code("poolTimeout")
        /// The pool was closed.
        @usableFromInline package static let shutdown = Code("shutdown")
        /// The caller would have to wait, but the pool's `run()` is not running to time the wait out.
        @usableFromInline package static let notRunning = Code("notRunning")
        /// The waiting task was cancelled.
        @usableFromInline package static let cancelled = Code("cancelled")
    }

    /// The code.
    @usableFromInline package var code: Code
    /// The pool or breaker the error concerns.
    @usableFromInline package var source: String
    /// A one-line explanation with the figures that matter.
    @usableFromInline package var message: String

    /// Creates an error.
    @usableFromInline package init(_ code: Code, source: String, message: String) {
        self.code = code
        self.source = source
        self.message = message
    }

    /// `source: code: message`.
    @usableFromInline package var description: String { "\(source): \(code): \(message)" }
}

/// How work run through the connection layer failed (a ``CircuitBreaker``'s call, a
/// ``ConnectionPool``'s borrow): the layer refused it and it did not run, or it ran and failed
/// with the client's own error. Each client says both in its own error type, with no cast.
@usableFromInline package enum ManagedFailure<Failure: Error>: Error {
    /// The layer refused: a breaker open, a pool closed, timed out or not running, the waiting
    /// task cancelled. The work did not run.
    case refused(ConnectionKitError)
    /// The work failed: a dial, or the body of a call.
    case failed(Failure)
}

extension ManagedFailure {
    /// The layer's refusal, when it refused.
    package var refusal: ConnectionKitError? {
        if case .refused(let error) = self { return error }
        return nil
    }

    /// The work's own error, when it ran and failed.
    package var failure: Failure? {
        if case .failed(let error) = self { return error }
        return nil
    }
}

extension ManagedFailure: Equatable where Failure: Equatable {}

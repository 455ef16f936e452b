import ConnectionKit
import SQLCore

/// An `SQLDriver` that passes everything to another driver and adds the
/// faults you set, for resilience tests of your own: wrap each node's driver
/// in one and make a node slow, dead or hung while a workload runs.
///
/// Faults apply from the next call on, to new and open connections alike.
public final class FaultInjectingDriver: SQLDriver {
    let inner: any SQLDriver
    private let current = Locked(Faults())
    private let open = Locked(0)
    private let busy = Locked(0)
    private let clock: AnyClock

    /// Wraps `inner`, with no faults yet; injected latencies and hangs pass on `clock` (give the
    /// cluster's `ManualClock` to make a test of them deterministic).
    public init(wrapping inner: any SQLDriver, clock: AnyClock = .continuous) {
        self.inner = inner
        self.clock = clock
    }

    /// The wrapped driver's name, so that statistics name the real backend.
    public var name: String { inner.name }

    /// The wrapped driver's executor.
    public var taskExecutor: (any TaskExecutor)? { inner.taskExecutor }

    /// The faults in force.
    public var faults: Faults {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    /// Connections opened through this driver and not closed yet.
    public var openConnections: Int { open.withLock { $0 } }

    /// Calls into the wrapped driver under way (connects, statements, closes): real work, which
    /// a test driving a `ManualClock` waits for before it moves time on.
    public var callsInProgress: Int { busy.withLock { $0 } }

    /// Opens a connection through the wrapped driver, after the faults for a connect.
    public func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        try await connect { () async throws(SQLError) in try await inner.connect(to: dsn) }
    }

    /// Opens a connection through the wrapped driver with `setup` (so that a wrapped cluster
    /// driver runs it on every node connection), after the faults for a connect.
    public func connect(to dsn: String, onConnect setup: SQLSessionSetup) async throws(SQLError) -> any SQLConnection {
        try await connect { () async throws(SQLError) in try await inner.connect(to: dsn, onConnect: setup) }
    }

    private func connect(_ open: () async throws(SQLError) -> any SQLConnection) async throws(SQLError) -> any SQLConnection {
        try await beforeCall(connecting: true)
        let connection = FaultInjectingConnection(inner: try await passing(open), driver: self)
        self.open.withLock { $0 += 1 }
        return connection
    }

    /// Runs `call` into the wrapped driver, counted in ``callsInProgress``.
    func passing<T, Failure: Error>(_ call: () async throws(Failure) -> T) async throws(Failure) -> T {
        busy.withLock { $0 += 1 }
        defer { busy.withLock { $0 -= 1 } }
        return try await call()
    }

    func connectionClosed() { open.withLock { $0 -= 1 } }

    /// Applies the faults to a call about to start; throws when it must fail.
    func beforeCall(connecting: Bool) async throws(SQLError) {
        let faults = self.faults
        if faults.latency > .zero { try await pause(faults.latency) }
        if let hang = faults.hang {
            try await pause(hang)
            throw SQLError(.timeout, message: "injected: no answer within \(hang)", backend: name)
        }
        if faults.down {
            throw connecting
                ? SQLError(.connectionFailed, message: "injected: connection refused", backend: name)
                : SQLError(.connectionLost, message: "injected: the server went away", backend: name)
        }
    }

    /// Whether a statement that just ran loses its reply.
    func loseReply() -> Bool {
        let rate = faults.statementFailureRate
        return rate > 0 && Double.random(in: 0..<1) < rate
    }

    private func pause(_ duration: Duration) async throws(SQLError) {
        do {
            try await clock.sleep(for: duration)
        } catch {
            throw SQLError(.cancelled, message: "cancelled", backend: name)
        }
    }
}

/// A connection of a ``FaultInjectingDriver``.
final class FaultInjectingConnection: SQLConnection {
    private let inner: any SQLConnection
    private let driver: FaultInjectingDriver
    private let broken = Locked(false)
    private let closed = Locked(false)

    init(inner: any SQLConnection, driver: FaultInjectingDriver) {
        self.inner = inner
        self.driver = driver
    }

    var isValid: Bool { !broken.withLock { $0 } && inner.isValid }
    var transactionStatus: SQLTransactionStatus { isValid ? inner.transactionStatus : .unknown }

    func query(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await faulty { () async throws(SQLError) in try await inner.query(sql, parameters) }
    }

    func queryAll(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> [SQLRows] {
        try await faulty { () async throws(SQLError) in try await inner.queryAll(sql, parameters) }
    }

    func execute(_ sql: String, _ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await faulty { () async throws(SQLError) in try await inner.execute(sql, parameters) }
    }

    func execute(_ sql: String, batch: [[SQLValue]]) async throws(SQLError) -> [SQLExecution] {
        try await faulty { () async throws(SQLError) in try await inner.execute(sql, batch: batch) }
    }

    func prepare(_ sql: String) async throws(SQLError) -> any SQLPreparedStatement {
        let statement = try await faulty { () async throws(SQLError) in try await inner.prepare(sql) }
        return FaultInjectingStatement(inner: statement, connection: self)
    }

    func begin(_ options: SQLTransactionOptions) async throws(SQLError) {
        try await faulty { () async throws(SQLError) in try await inner.begin(options) }
    }
    func commit() async throws(SQLError) { try await faulty { () async throws(SQLError) in try await inner.commit() } }
    func rollback() async throws(SQLError) { try await faulty { () async throws(SQLError) in try await inner.rollback() } }
    func ping() async throws(SQLError) { try await faulty { () async throws(SQLError) in try await inner.ping() } }

    func close() async {
        let first = closed.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        await driver.passing { () async in await inner.close() }
        if first { driver.connectionClosed() }
    }

    func faulty<T>(_ body: () async throws(SQLError) -> T) async throws(SQLError) -> T {
        if broken.withLock({ $0 }) { throw SQLError(.connectionLost, message: "injected: the connection is broken", backend: driver.name) }
        do {
            try await driver.beforeCall(connecting: false)
        } catch {
            if error.isConnectionError { broken.withLock { $0 = true } }
            throw error
        }
        let result = try await driver.passing(body)
        if driver.loseReply() {
            broken.withLock { $0 = true }
            throw SQLError(.connectionLost, message: "injected: the reply was lost", backend: driver.name)
        }
        return result
    }
}

/// A prepared statement of a ``FaultInjectingConnection``: its runs get the connection's faults.
struct FaultInjectingStatement: SQLPreparedStatement {
    let inner: any SQLPreparedStatement
    let connection: FaultInjectingConnection

    var sql: String { inner.sql }

    func query(_ parameters: [SQLValue]) async throws(SQLError) -> SQLRows {
        try await connection.faulty { () async throws(SQLError) in try await inner.query(parameters) }
    }

    func execute(_ parameters: [SQLValue]) async throws(SQLError) -> SQLExecution {
        try await connection.faulty { () async throws(SQLError) in try await inner.execute(parameters) }
    }

    func close() async { await inner.close() }
}

/// What runs on every new connection before its first use: SQL statements
/// (`SET search_path TO app`, `SET time_zone = '+00:00'`, `PRAGMA …`), a
/// closure, or several of them in order.
///
/// Give it to a ``Database`` (`onConnect:`), to a driver
/// (``SQLDriver/onConnect(_:)``, which a cluster node's driver may be), or
/// write `session_sql = [...]` in config.toml, per cluster or node. Through a
/// cluster driver it runs on every node connection a cluster connection
/// uses, including one it moves to after a node fails.
///
/// A failing setup fails the open with its error: the connection is closed,
/// and a statement-class error (a typo in the SQL) stays statement-class, so
/// it never counts against a node's health. A connection-class one (the
/// connection broke during the setup) is what it says.
public struct SQLSessionSetup: Sendable {
    /// One step: a statement, or the caller's closure.
    private enum Step: Sendable {
        case sql(String)
        case body(@Sendable (any SQLConnection) async throws(SQLError) -> Void)
    }

    private var steps: [Step]

    /// Runs `statements`, in order (each may be a script of several, separated by semicolons).
    public init(_ statements: [String]) {
        steps = statements.map { .sql($0) }
    }

    /// Runs `body` on the new connection.
    public init(_ body: @escaping @Sendable (any SQLConnection) async throws(SQLError) -> Void) {
        steps = [.body(body)]
    }

    /// This setup, then `next`.
    public func followed(by next: SQLSessionSetup) -> SQLSessionSetup {
        var combined = self
        combined.steps += next.steps
        return combined
    }

    /// Whether it does nothing.
    package var isEmpty: Bool { steps.isEmpty }

    /// Runs every step on `connection`, in order; the first failure is thrown (the caller closes the connection).
    package func run(on connection: any SQLConnection) async throws(SQLError) {
        for step in steps {
            do throws(SQLError) {
                switch step {
                case .sql(let sql): _ = try await connection.execute(sql, [])
                case .body(let body): try await body(connection)
                }
            } catch {
                var failure = error
                failure.message = "session setup: " + error.message
                throw failure
            }
        }
    }

    /// Runs the setup on a connection just opened, closing it when the setup fails.
    package func prepare(_ connection: any SQLConnection) async throws(SQLError) -> any SQLConnection {
        do throws(SQLError) {
            try await run(on: connection)
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }
}

extension SQLDriver {
    /// Opens a connection and runs `setup` on it before returning it.
    public func connect(to dsn: String, onConnect setup: SQLSessionSetup) async throws(SQLError) -> any SQLConnection {
        let connection = try await connect(to: dsn)
        return try await setup.prepare(connection)
    }

    /// This driver, running `setup` on every connection it opens before its first use.
    ///
    /// As a cluster node's driver, the setup runs on the node's connections for
    /// users, not on the cluster's own health checks.
    public func onConnect(_ setup: SQLSessionSetup) -> any SQLDriver {
        if let wrapped = self as? SessionSetupDriver {
            return SessionSetupDriver(inner: wrapped.inner, setup: wrapped.setup.followed(by: setup))
        }
        return SessionSetupDriver(inner: self, setup: setup)
    }
}

/// A driver that runs a session setup on every connection it opens (``SQLDriver/onConnect(_:)``).
package struct SessionSetupDriver: SQLReplicationDialect {
    /// The driver that opens the connections.
    package let inner: any SQLDriver
    /// What runs on each of them.
    package let setup: SQLSessionSetup

    package var name: String { inner.name }
    package var pooledConnectionLifetime: Duration? { inner.pooledConnectionLifetime }
    package var taskExecutor: (any TaskExecutor)? { inner.taskExecutor }

    package func connect(to dsn: String) async throws(SQLError) -> any SQLConnection {
        try await inner.connect(to: dsn, onConnect: setup)
    }

    package func connect(to dsn: String, onConnect more: SQLSessionSetup) async throws(SQLError) -> any SQLConnection {
        try await inner.connect(to: dsn, onConnect: setup.followed(by: more))
    }

    /// The wrapped driver's reading, or a primary when it does not adopt the protocol.
    package func readRole(on connection: any SQLConnection) async throws(SQLError) -> NodeRole {
        try await inner.dialectRole(on: connection)
    }

    /// The wrapped driver's reading, or no figure when it does not adopt the protocol.
    package func readReplication(
        on connection: any SQLConnection, role: NodeRole, primaryPosition: Int64?
    ) async throws(SQLError) -> ReplicationReading {
        try await inner.dialectReplication(on: connection, role: role, primaryPosition: primaryPosition)
    }
}

import ConnectionKit

/// Drivers registered under names, to open connections by driver name (as a
/// configuration file names them), safe to use from any number of tasks.
///
/// There is no process-wide registry: an application makes one, registers
/// the backends it links, and passes it where it is needed.
public final class SQLDriverRegistry: Sendable {
    private let drivers = Locked<[String: any SQLDriver]>([:])

    /// Creates an empty registry.
    public init() {}

    /// Registers `driver` under `name`.
    ///
    /// - Throws: ``SQLError/Code/duplicateDriver`` when the name is taken,
    ///   ``SQLError/Code/invalidConfiguration``
    ///   for an empty name.
    public func register(_ driver: any SQLDriver, as name: String) throws(SQLError) {
        guard !name.isEmpty else {
            throw SQLError(.invalidConfiguration, message: "a driver name must not be empty")
        }
        let inserted = drivers.withLock { table -> Bool in
            guard table[name] == nil else { return false }
            table[name] = driver
            return true
        }
        guard inserted else {
            throw SQLError(.duplicateDriver, message: "a driver is already registered as \(name)")
        }
    }

    /// Removes the driver registered under `name`; returns whether there was one.
    @discardableResult
    public func unregister(_ name: String) -> Bool {
        drivers.withLock { $0.removeValue(forKey: name) != nil }
    }

    /// The driver registered under `name`.
    public func driver(named name: String) throws(SQLError) -> any SQLDriver {
        guard let driver = drivers.withLock({ $0[name] }) else {
            let known = names.joined(separator: ", ")
            throw SQLError(.unknownDriver, message: "no driver registered as \(name) (registered: \(known.isEmpty ? "none" : known))")
        }
        return driver
    }

    /// The registered names, sorted.
    public var names: [String] { drivers.withLock { $0.keys.sorted() } }

    /// Opens a connection with the driver registered under `driverName`.
    public func connect(driver driverName: String, dsn: String) async throws(SQLError) -> any SQLConnection {
        try await driver(named: driverName).connect(to: dsn)
    }
}

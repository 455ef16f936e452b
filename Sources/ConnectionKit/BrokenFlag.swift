import Synchronization

/// Whether a connection saw a connection-class failure or was closed: set once on
/// the connection's own thread, read from any thread without a lock.
package final class BrokenFlag: Sendable {
    private let value = Atomic<Bool>(false)

    /// A flag that is not set.
    package init() {}

    /// Whether it is set.
    package var isSet: Bool { value.load(ordering: .relaxed) }

    /// Sets it, for good.
    package func set() { value.store(true, ordering: .relaxed) }
}

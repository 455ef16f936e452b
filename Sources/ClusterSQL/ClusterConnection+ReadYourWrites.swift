import ConnectionKit
import Logging
import SQLCore

extension ClusterConnection {
    /// `binding`, once its node has applied `position` (known from the checks, or polled on the
    /// connection for up to ``ClusterDriverConfiguration/readYourWritesTimeout``). A node that
    /// cannot take writes and is still behind gives the statement to a primary; a writable node
    /// still behind (a position from elsewhere, writes lost in a failover) lowers the session's
    /// position to its own, so that what cannot be met is waited for once.
    func applied(_ position: Int64, on binding: NodeBinding, session: ReadYourWritesSession) async throws(SQLError) -> NodeBinding {
        if binding.node.hasApplied(position) { return binding }
        let reached = try await poll(binding, until: position)
        if reached.done { return binding }
        let name = cluster.configuration.name
        if binding.node.role.isWritable {
            if let last = reached.last { session.settle(name, at: last) }
            cluster.logger.warning(
                "read-your-writes: a primary is behind the session's position; serving on it",
                metadata: ["node": "\(binding.node.name)", "position": "\(position)"])
            return binding
        }
        let primary: NodeBinding
        do throws(SQLError) {
            primary = try await cluster.open(OpenRequest(target: .readWrite), excluding: [binding.node.name], sessionSetup: sessionSetup)
        } catch  where error.code != .cancelled {
            cluster.logger.warning(
                "read-your-writes: the node is behind and no primary can take the statement; serving on the node",
                metadata: ["node": "\(binding.node.name)", "error": "\(error.description)"])
            return binding
        }
        // A primary has every write of its cluster: a session ahead of it asks for what will not come.
        if let last = try? await primary.node.readAppliedPosition(on: primary.connection), last < position {
            session.settle(name, at: last)
        }
        return try await swap(binding, for: primary)
    }

    /// Polls the position `binding`'s node has applied until it reaches `position` or the timeout
    /// passes: whether it did (a backend without positions counts as done), and the last read.
    /// The timeout is checked between reads, so a read in flight when it passes finishes and the
    /// connection stays usable (a cancelled statement gives its connection up); a read still
    /// unanswered `checkTimeout` later (a silent node) is cancelled and fails the statement.
    private func poll(_ binding: NodeBinding, until position: Int64) async throws(SQLError) -> (done: Bool, last: Int64?) {
        let clock = cluster.clock
        let timeout = cluster.configuration.readYourWritesTimeout
        let deadline = clock.now.advanced(by: timeout)
        let bound = timeout + cluster.configuration.checkTimeout
        return try await withDeadline(bound, on: clock, what: "waiting for node \(binding.node.name) to apply the session's writes") {
            () async throws(SQLError) -> (done: Bool, last: Int64?) in
            var pause = Duration.milliseconds(1)
            var last: Int64?
            while true {
                let read: Int64?
                do throws(SQLError) {
                    read = try await binding.node.readAppliedPosition(on: binding.connection)
                } catch  where !error.isConnectionError && error.code != .cancelled {
                    return (false, last)  // cannot tell here (a privilege): not done
                }
                guard let read else { return (true, nil) }
                last = read
                if read >= position { return (true, read) }
                let left = clock.now.duration(to: deadline)
                if left <= .zero { return (false, read) }
                do {
                    try await clock.sleep(for: min(pause, left))
                } catch {
                    throw SQLError(.cancelled, message: "cancelled while waiting for the node to apply the session's writes")
                }
                pause = min(pause * 2, .milliseconds(20))
            }
        }
    }

    /// Makes `primary` the connection's binding in place of `old` (under the rebinding lock, and
    /// only if `old` is still the binding: another statement may have moved it meanwhile).
    private func swap(_ old: NodeBinding, for primary: NodeBinding) async throws(SQLError) -> NodeBinding {
        guard await rebinding.lock() else {
            await primary.connection.close()
            throw SQLError(.cancelled, message: "cancelled while moving to a primary")
        }
        defer { rebinding.unlock() }
        guard machine.withLock({ $0.moved(from: old, to: primary) }) else {
            await primary.connection.close()
            guard let current = machine.withLock({ $0.binding }) else {
                throw SQLError(.closed, message: "the cluster connection is closed")
            }
            return current
        }
        await old.connection.close()
        return primary
    }

    /// Reads the write position of the node a write just committed on into `session`. A failure
    /// loses only the position (the write stands), and is logged.
    func recordWrite(on binding: NodeBinding, into session: ReadYourWritesSession) async {
        do throws(SQLError) {
            if let position = try await binding.node.readAppliedPosition(on: binding.connection) {
                session.advance(cluster.configuration.name, to: position)
            }
        } catch {
            cluster.logger.warning(
                "read-your-writes: the write's position could not be read; later reads may not see it",
                metadata: ["node": "\(binding.node.name)", "error": "\(error.code)"])
        }
    }
}

import ConnectionKit
import Logging
import SQLCore
import ServiceLifecycle

extension ClusterDriver {
    /// Watches every node, present and added later, until cancelled or shut
    /// down gracefully: each node's breaker probes it back after an ejection,
    /// and a check measures its round trip and re-reads its role every
    /// ``ClusterDriverConfiguration/checkInterval`` (and at once after a
    /// read-only error or a statement timeout), and measures its replication lag (``ReplicationProbe``).
    /// A failed check ejects the node.
    public func run() async throws {
        guard markRunning() else { return }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for await node in self.addedNodes {
                    group.addTask { await self.watch(node) }
                }
                group.cancelAll()
            }
        }
    }

    /// Checks every serving node once, now and concurrently, as the
    /// background check does: it connects, measures a round trip and reads
    /// the role and the replication lag, each within
    /// ``ClusterDriverConfiguration/checkTimeout``; a failure ejects the node. For tools and readiness probes that want
    /// fresh figures without running ``run()``.
    public func checkAll() async {
        await withTaskGroup(of: Void.self) { group in
            for node in sortedNodes {
                group.addTask {
                    var connection: (any SQLConnection)?
                    await self.check(node, reusing: &connection)
                    await connection?.close()
                }
            }
        }
    }

    private func watch(_ node: ClusterNode) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await node.breaker.run() }
            group.addTask { await self.checkPeriodically(node) }
            group.addTask {
                for await _ in node.checkRequests {
                    var connection: (any SQLConnection)?
                    await self.check(node, reusing: &connection)
                    await connection?.close()
                }
            }
            for await _ in node.retirement {}
            group.cancelAll()
        }
    }

    private func checkPeriodically(_ node: ClusterNode) async {
        var connection: (any SQLConnection)?
        while !Task.isCancelled, !node.isRemoved {
            await check(node, reusing: &connection)
            do { try await clock.sleep(for: configuration.checkInterval) } catch { break }
        }
        await connection?.close()
    }

    /// One check of a serving node on `connection` (opened when `nil`, closed and cleared when it fails).
    func check(_ node: ClusterNode, reusing connection: inout (any SQLConnection)?) async {
        guard node.breaker.state == .closed else {
            await connection?.close()
            connection = nil
            return
        }
        let existing = connection?.isValid == true ? connection : nil
        if existing == nil, let stale = connection {
            await stale.close()
            connection = nil
        }
        let timedOut = Locked(false)
        do throws(SQLError) {
            let (checked, role, roundTrip, reading) = try await withDeadline(
                configuration.checkTimeout, on: clock, what: "the check of node \(node.name)",
                onTimeout: { [checkTimeout = configuration.checkTimeout] in
                    timedOut.withLock { $0 = true }
                    node.recordStall(checkTimeout)
                    node.recordFailure(SQLError(.timeout, message: "the node did not answer a check in time", node: node.name))
                }
            ) { () async throws(SQLError) -> (any SQLConnection, NodeRole, Duration, ReplicationReading?) in
                let checked: any SQLConnection
                if let existing { checked = existing } else { checked = try await node.driver.connect(to: node.dsn) }
                do throws(SQLError) {
                    let started = node.clock.now
                    try await checked.ping()
                    let roundTrip = started.duration(to: node.clock.now)
                    let role = try await node.roleDetector.detect(checked)
                    return (checked, role, roundTrip, try await self.measureReplication(of: node, role: role, on: checked))
                } catch {
                    if existing == nil { await checked.close() }
                    throw error
                }
            }
            connection = checked
            node.recordLatencySample(roundTrip)
            node.setRole(role)
            node.setLag(reading?.lag)
            if let position = reading?.position { node.observeApplied(position, fromCheck: true) }
            if role.isWritable, let position = reading?.position { recordPrimaryPosition(position) }
        } catch {
            await connection?.close()
            connection = nil
            if !timedOut.withLock({ $0 }), error.code != .cancelled { node.recordFailure(error.on(node: node.name)) }
        }
    }

    /// The node's replication reading, or `nil` when the probe failed for a reason other than the
    /// connection (a user without the privilege to read replica status): the lag is then unknown,
    /// which no limit holds against, and the node is not ejected for it.
    private func measureReplication(
        of node: ClusterNode, role: NodeRole, on connection: any SQLConnection
    ) async throws(SQLError) -> ReplicationReading? {
        guard role != .notReady, role != .unknown else { return nil }
        do throws(SQLError) {
            var reading = try await node.replicationProbe.measure(connection, role, primaryPosition)
            // A standby that gave its replayed position but no time: timed from when the checks saw a primary pass it.
            if role == .standby, let measured = reading.lag, measured.seconds == nil, !measured.isBehindByUnknown,
                let replayed = reading.position
            {
                reading.lag?.seconds = lag(ofReplayed: replayed).inSeconds
            }
            return reading
        } catch  where !error.isConnectionError {
            logger.debug(
                "replication lag not measured", metadata: ["node": "\(node.name)", "error": "\(error.description)"])
            return nil
        }
    }
}

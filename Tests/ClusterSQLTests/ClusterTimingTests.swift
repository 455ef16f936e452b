import ClusterSQL
import ConnectionKit
import FaultInjection
import SQLCore
import SQLTestSupport
import TestSupport
import Testing

/// Waits until `clock` has exactly `count` sleepers (tasks parked on it): the tasks under test have reached
/// their timers. A scheduling wait, bounded; the time these tests are about passes only by `advance(by:)`.
private func settle(_ clock: ManualClock, sleepers count: Int) async {
    await clock.waitForSleepers(exactly: count)
    #expect(clock.sleeperCount == count, "tasks parked on the manual clock")
}

/// Runs `operation` on `local`'s nodes to its end in `clock`'s virtual time: whenever its tasks have all
/// parked (no call into a node's real driver under way, no woken sleeper still to run, the clock's sleepers
/// unchanged over a few polls),
/// the clock jumps to the earliest deadline. Each sleep then lasts exactly its virtual duration, and the
/// real time the machine takes (a loaded CI machine's too) does not count.
private func inVirtualTime<T: Sendable>(
    on clock: ManualClock, _ local: LocalCluster, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let finished = Locked(false)
    let task = Task {
        defer { finished.withLock { $0 = true } }
        return try await operation()
    }
    var quietPolls = 0
    var lastCount = -1
    while !finished.withLock({ $0 }) {
        await Task.yield()
        if finished.withLock({ $0 }) { break }
        try? await Task.sleep(for: .microseconds(200))
        let count = clock.sleeperCount
        if count != lastCount || clock.resumingCount > 0 || local.drivers.values.contains(where: { $0.callsInProgress > 0 }) {
            (lastCount, quietPolls) = (count, 0)
            continue
        }
        quietPolls += 1
        if quietPolls >= 5, let deadline = clock.earliestDeadline {
            clock.advance(by: clock.now.duration(to: deadline))
            (lastCount, quietPolls) = (-1, 0)
        }
    }
    return try await task.value
}

@Suite("ClusterDriver's timing on a manual clock: open timeout, hedges, probes (no wall-clock bounds)", .timeLimit(.minutes(2)))
struct ClusterTimingTests {
    @Test("every node hangs: the open fails with a timeout when the cluster's clock reaches the open timeout, not a moment before")
    func openTimeout() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .race, clock: AnyClock(clock)) { $0.openTimeout = .milliseconds(300) }
        for driver in local.drivers.values { driver.faults = .hanging(for: .seconds(30)) }
        let finished = Locked(false)
        let open = Task {
            defer { finished.withLock { $0 = true } }
            return try await local.cluster.connect(to: "")
        }
        await settle(clock, sleepers: 4)  // the open timeout and the three hung connects
        clock.advance(by: .milliseconds(299))
        await Task.yield()
        #expect(!finished.withLock { $0 } && clock.sleeperCount == 4)
        clock.advance(by: .milliseconds(1))
        let error = await expectSQLError(.timeout) { try await open.value }
        #expect((error?.underlying as? NodeFailures)?.failures.count == 3)
        #expect(clock.sleeperCount == 0)  // the hung tries were cancelled
        // A try cancelled because the open ended is not a failure of its node.
        #expect(local.cluster.statistics().nodes.allSatisfy { $0.state == .up && $0.errors == 0 })
    }

    @Test("round-robin: a hung first node is hedged by the next exactly when the hedge delay has passed on the cluster's clock")
    func hedge() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .roundRobin, clock: AnyClock(clock)) { $0.hedgeDelay = .milliseconds(50) }
        // Round-robin's first open starts at the second node: n2, then n3, then n1.
        local.drivers["n2"]!.faults = .hanging(for: .seconds(30))
        let finished = Locked(false)
        let open = Task {
            defer { finished.withLock { $0 = true } }
            return try await local.cluster.connect(to: "")
        }
        await settle(clock, sleepers: 3)  // the open timeout, the hedge timer and n2's hung connect
        clock.advance(by: .milliseconds(49))
        await Task.yield()
        #expect(!finished.withLock { $0 } && local.node("n3").connections == 0)
        clock.advance(by: .milliseconds(1))
        let connection = try await open.value
        #expect(local.node("n3").connections == 1 && local.node("n2").connections == 0)
        #expect(local.node("n1").connections == 0)  // nobody hedged n3, which answered at once
        await connection.close()
        await settle(clock, sleepers: 0)  // n2's try and the timers were cancelled with the open
        #expect(local.node("n2").errors == 0 && local.node("n2").state == .up)
    }

    @Test(
        "a dead node is ejected by its first check and skipped; it is probed back after the probe backoff on the cluster's clock, not before, and serves again"
    )
    func probeBack() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .roundRobin, clock: AnyClock(clock)) {
            $0.checkInterval = .seconds(3600)
            $0.breaker.probeBackoff = BackoffPolicy(initial: .milliseconds(100), maximum: .milliseconds(100), jitter: 0)
        }
        local.drivers["n2"]!.faults = .dead
        try await whileRunning(local.cluster) {
            // The first check of each node runs at once; n2's fails and ejects it.
            #expect(await eventually(within: .seconds(10)) { local.node("n2").state == .ejected })
            local.drivers["n2"]!.faults = Faults()
            // Three check loops wait for the next interval, n2's prober for its backoff.
            await settle(clock, sleepers: 4)
            #expect(local.node("n2").state == .ejected)
            for _ in 0..<3 {
                let connection = try await local.cluster.connect(to: "")
                await connection.close()
            }
            #expect(local.node("n2").connections == 0)  // skipped while ejected, though it answers again
            clock.advance(by: .milliseconds(100))
            #expect(await eventually(within: .seconds(10)) { local.node("n2").state == .up })
            // Back in the rotation: three opens reach every node.
            for _ in 0..<3 {
                let connection = try await local.cluster.connect(to: "")
                await connection.close()
            }
            #expect(local.node("n2").connections == 1)
        }
    }

    @Test(
        "without run(), once every node is ejected an open gives one whose probe delay has passed a trial: not a moment before, and a success re-admits it"
    )
    func trialWithoutRun() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(nodes: ["n1", "n2"], clock: AnyClock(clock)) {
            $0.breaker.probeBackoff = BackoffPolicy(initial: .milliseconds(100), maximum: .milliseconds(100), jitter: 0)
        }
        for driver in local.drivers.values { driver.faults = .dead }
        await expectSQLError(.allNodesFailed) { try await local.cluster.connect(to: "") }
        #expect(local.cluster.statistics().nodes.allSatisfy { $0.state == .ejected })
        for driver in local.drivers.values { driver.faults = Faults() }
        await expectSQLError(.noEligibleNode) { try await local.cluster.connect(to: "") }
        clock.advance(by: .milliseconds(99))
        await expectSQLError(.noEligibleNode) { try await local.cluster.connect(to: "") }
        clock.advance(by: .milliseconds(1))
        let connection = try await local.cluster.connect(to: "")
        #expect(try await connection.query("SELECT 1")[0][0] == 1)
        #expect(local.cluster.statistics().nodes.contains { $0.state == .up }, "the trial's success re-admits its node")
        await connection.close()
    }

    @Test("without run(), a failed trial keeps the node ejected until its next probe delay has passed")
    func failedTrialWithoutRun() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(nodes: ["n1"], clock: AnyClock(clock)) {
            $0.breaker.probeBackoff = BackoffPolicy(initial: .milliseconds(100), maximum: .milliseconds(100), jitter: 0)
        }
        local.drivers["n1"]!.faults = .dead
        await expectSQLError(.allNodesFailed) { try await local.cluster.connect(to: "") }
        clock.advance(by: .milliseconds(100))
        await expectSQLError(.allNodesFailed) { try await local.cluster.connect(to: "") }  // the trial, still dead
        #expect(local.node("n1").state == .ejected)
        local.drivers["n1"]!.faults = Faults()
        await expectSQLError(.noEligibleNode) { try await local.cluster.connect(to: "") }
        clock.advance(by: .milliseconds(100))
        let connection = try await local.cluster.connect(to: "")
        #expect(local.node("n1").state == .up)
        await connection.close()
    }

    @Test("latency: each open reaches the answering node within one hedge delay per hung node, on the cluster's clock")
    func latencyHedging() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .latency, clock: AnyClock(clock)) { $0.hedgeDelay = .milliseconds(50) }
        for name in ["n1", "n3"] { local.drivers[name]!.faults = .hanging(for: .seconds(30)) }
        var waits: [Duration] = []
        for _ in 0..<5 {
            let started = clock.now
            let connection = try await inVirtualTime(on: clock, local) { try await local.cluster.connect(to: "") }
            waits.append(started.duration(to: clock.now))
            await connection.close()
            await settle(clock, sleepers: 0)  // the hung tries and the timers were cancelled with the open
        }
        #expect(local.node("n2").connections == 5)
        // n2 answers at once: an open waits only for the hedge delays of the hung nodes tried before it.
        #expect(waits.allSatisfy { [.zero, .milliseconds(50), .milliseconds(100)].contains($0) }, "\(waits)")
        #expect(local.drivers.values.allSatisfy { $0.openConnections == 0 })
    }

    @Test(
        "latency: a node 5 ms slower than the others (6 ms against 1 ms a call) gets at most 10% of the opens, in virtual time (the machine's load cannot blur it)"
    )
    func slowNodeGetsLittle() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .latency, clock: AnyClock(clock))
        for (name, driver) in local.drivers { driver.faults = .slow(.milliseconds(name == "n2" ? 6 : 1)) }
        for _ in 0..<300 {
            try await inVirtualTime(on: clock, local) {
                let connection = try await local.cluster.connect(to: "")
                _ = try await connection.query("SELECT 1")
                await connection.close()
            }
        }
        let opens = local.cluster.statistics().nodes.map(\.connections)
        #expect(opens.reduce(0, +) >= 300)  // a hedge that also succeeded counts (and was closed)
        #expect(local.node("n2").connections * 10 <= opens.reduce(0, +), "opens per node: \(opens)")
        #expect(local.node("n1").connections > 60 && local.node("n3").connections > 60, "opens per node: \(opens)")
    }

    @Test("every node hangs for good: the caller's cancellation alone ends the open, and the cancelled tries are no failures")
    func cancellation() async throws {
        let clock = ManualClock()  // never advanced: only the cancellation can end the open
        let local = try LocalCluster(strategy: .race, clock: AnyClock(clock))
        for driver in local.drivers.values { driver.faults = .hanging(for: .seconds(30)) }
        let open = Task { try await local.cluster.connect(to: "") }
        await settle(clock, sleepers: 4)  // the open timeout and the three hung connects
        open.cancel()
        await expectSQLError(.cancelled) { try await open.value }
        await settle(clock, sleepers: 0)
        #expect(local.cluster.statistics().nodes.allSatisfy { $0.state == .up && $0.errors == 0 })
    }

    @Test("every node hangs a check: checkAll returns when the cluster's clock reaches the check timeout, not before; each node is ejected")
    func checkTimeout() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(clock: AnyClock(clock)) { $0.checkTimeout = .milliseconds(500) }
        for driver in local.drivers.values { driver.faults = .hanging(for: .seconds(30)) }
        let finished = Locked(false)
        let check = Task {
            defer { finished.withLock { $0 = true } }
            await local.cluster.checkAll()
        }
        await settle(clock, sleepers: 6)  // each node's check deadline and its hung connect
        clock.advance(by: .milliseconds(499))
        await Task.yield()
        #expect(!finished.withLock { $0 } && clock.sleeperCount == 6)
        clock.advance(by: .milliseconds(1))
        await check.value
        await settle(clock, sleepers: 0)  // the hung connects were cancelled
        #expect(local.cluster.statistics().nodes.allSatisfy { $0.state != .up && $0.errors == 1 }, "\(local.cluster.statistics().nodes)")
    }
}

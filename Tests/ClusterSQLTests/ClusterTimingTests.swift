import ClusterSQL
import ConnectionKit
import FaultInjection
import SQLCore
import SQLTestSupport
import Testing

/// Waits until `clock` has `count` sleepers (tasks parked on it): the tasks under test have reached their
/// timers. A scheduling wait, bounded; the time these tests are about passes only by `advance(by:)`.
private func settle(_ clock: ManualClock, sleepers count: Int) async {
    for _ in 0..<5_000 where clock.sleeperCount < count {
        await Task.yield()
        try? await Task.sleep(for: .milliseconds(1))
    }
    #expect(clock.sleeperCount == count, "tasks parked on the manual clock")
}

/// Whether `task` has finished, without waiting for it.
private final class Finished: Sendable {
    private let flag = Locked(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}

@Suite("ClusterDriver's timing on a manual clock: open timeout, hedges, probes (no wall-clock bounds)", .timeLimit(.minutes(1)))
struct ClusterTimingTests {
    @Test("every node hangs: the open fails with a timeout when the cluster's clock reaches the open timeout, not a moment before")
    func openTimeout() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .race, clock: AnyClock(clock)) { $0.openTimeout = .milliseconds(300) }
        for driver in local.drivers.values { driver.faults = .hanging(for: .seconds(30)) }
        let finished = Finished()
        let open = Task {
            defer { finished.set() }
            return try await local.cluster.connect(to: "")
        }
        await settle(clock, sleepers: 4)  // the open timeout and the three hung connects
        clock.advance(by: .milliseconds(299))
        await Task.yield()
        #expect(!finished.isSet && clock.sleeperCount == 4)
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
        let finished = Finished()
        let open = Task {
            defer { finished.set() }
            return try await local.cluster.connect(to: "")
        }
        await settle(clock, sleepers: 3)  // the open timeout, the hedge timer and n2's hung connect
        clock.advance(by: .milliseconds(49))
        await Task.yield()
        #expect(!finished.isSet && local.node("n3").connections == 0)
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

    @Test("latency: each open reaches the answering node within one hedge delay per hung node, on the cluster's clock")
    func latencyHedging() async throws {
        let clock = ManualClock()
        let local = try LocalCluster(strategy: .latency, clock: AnyClock(clock)) { $0.hedgeDelay = .milliseconds(50) }
        for name in ["n1", "n3"] { local.drivers[name]!.faults = .hanging(for: .seconds(30)) }
        var hedgesPerOpen: [Int] = []
        for _ in 0..<5 {
            let finished = Finished()
            let open = Task {
                defer { finished.set() }
                return try await local.cluster.connect(to: "")
            }
            var hedges = 0
            while hedges <= 2 {
                // Parked: the open timeout, the hedge timer and one hung connect per node tried so far.
                for _ in 0..<5_000 where !finished.isSet && clock.sleeperCount < 3 + hedges {
                    await Task.yield()
                    try? await Task.sleep(for: .milliseconds(1))
                }
                if finished.isSet { break }
                clock.advance(by: .milliseconds(50))
                hedges += 1
            }
            let connection = try await open.value
            await connection.close()
            await settle(clock, sleepers: 0)
            hedgesPerOpen.append(hedges)
        }
        #expect(local.node("n2").connections == 5)
        #expect(hedgesPerOpen.allSatisfy { $0 <= 2 }, "\(hedgesPerOpen)")
        #expect(local.drivers.values.allSatisfy { $0.openConnections == 0 })
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
}

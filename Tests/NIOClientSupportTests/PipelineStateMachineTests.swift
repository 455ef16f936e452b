import NIOCore
import Testing

@testable import NIOClientSupport

struct Boom: Error, Equatable {
    var text: String
}

private typealias Machine = PipelineStateMachine<String, Boom>

private func at(_ milliseconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(milliseconds) * 1_000_000) }

@Suite("PipelineStateMachine: the queue, deadlines and failure of a pipelined connection (no I/O, no clock)")
struct PipelineStateMachineTests {
    @Test("one timer for the head's read deadline: later requests and replies schedule nothing, a timer fired early re-arms")
    func readDeadline() {
        var machine = Machine(readTimeout: .milliseconds(100), writeTimeout: nil)
        machine.enqueue("GET a", now: at(1000))
        #expect(machine.timerToArm() == at(1100))
        machine.enqueue("GET b", now: at(1050))
        #expect(machine.timerToArm() == nil)  // the armed timer fires first
        #expect(machine.popHead() == "GET a")
        #expect(machine.timerToArm() == nil)
        guard case .rearm(let next) = machine.timerFired(now: at(1100)) else {
            Issue.record("GET b is due at 1150: the timer re-arms for it")
            return
        }
        #expect(next == at(1150))
        guard case .readTimeout(let head, let count) = machine.timerFired(now: at(1150)) else {
            Issue.record("GET b is overdue")
            return
        }
        #expect(head == "GET b" && count == 1)
    }

    @Test("an empty queue needs no timer; without timeouts nothing is ever due")
    func idle() {
        var machine = Machine(readTimeout: .milliseconds(100), writeTimeout: nil)
        #expect(machine.timerToArm() == nil)
        machine.enqueue("x", now: at(0))
        _ = machine.timerToArm()
        _ = machine.popHead()
        guard case .idle = machine.timerFired(now: at(100)) else {
            Issue.record("nothing waits")
            return
        }
        var untimed = Machine(readTimeout: nil, writeTimeout: nil)
        untimed.enqueue("x", now: at(0))
        #expect(untimed.timerToArm() == nil)
        #expect(untimed.writabilityChanged(isWritable: false, now: at(0)) == nil)
        guard case .idle = untimed.timerFired(now: .distantFuture - .nanoseconds(1)) else {
            Issue.record("no deadline without timeouts")
            return
        }
    }

    @Test("a socket unwritable for the write timeout fails; writable again in time, it does not")
    func writeDeadline() {
        var machine = Machine(readTimeout: nil, writeTimeout: .milliseconds(50))
        #expect(machine.writabilityChanged(isWritable: false, now: at(10)) == at(60))
        #expect(machine.writabilityChanged(isWritable: true, now: at(30)) == nil)
        guard case .idle = machine.timerFired(now: at(60)) else {
            Issue.record("writable again in time")
            return
        }
        #expect(machine.writabilityChanged(isWritable: false, now: at(70)) == at(120))
        guard case .writeTimeout = machine.timerFired(now: at(120)) else {
            Issue.record("unwritable for 50 ms")
            return
        }
    }

    @Test("an earlier write deadline moves an armed read timer forward")
    func earlierDeadlineReArms() {
        var machine = Machine(readTimeout: .seconds(1), writeTimeout: .milliseconds(10))
        machine.enqueue("x", now: at(0))
        #expect(machine.timerToArm() == at(1000))
        #expect(machine.writabilityChanged(isWritable: false, now: at(5)) == at(15))
    }

    @Test("the first failure ends it: the queue comes back once, in order; later failures and timers do nothing")
    func failure() {
        var machine = Machine(readTimeout: .milliseconds(100), writeTimeout: .milliseconds(100))
        machine.enqueue("a", now: at(0))
        machine.enqueue("b", now: at(0))
        _ = machine.timerToArm()
        let failed = machine.fail(Boom(text: "first"))
        #expect(failed.map { $0.map(\.entry) } == ["a", "b"])
        #expect(!machine.isOpen && machine.failure == Boom(text: "first") && machine.pendingCount == 0)
        #expect(machine.fail(Boom(text: "second")) == nil && machine.failure == Boom(text: "first"))
        #expect(machine.timerToArm() == nil)
        #expect(machine.writabilityChanged(isWritable: false, now: at(1)) == nil)
        guard case .idle = machine.timerFired(now: at(500)) else {
            Issue.record("an ended connection has no deadlines")
            return
        }
    }

    @Test("2,000 random event orders: an armed timer always fires by the earliest deadline, and every deadline that passes is reported")
    func noDeadlineIsMissed() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var machine = Machine(readTimeout: .milliseconds(Int64.random(in: 1...50, using: &random)), writeTimeout: .milliseconds(20))
            var armed: NIODeadline?
            var now: Int64 = 0
            var writable = true
            var ended = false
            for step in 0..<40 where !ended {
                now += Int64.random(in: 0...10, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0, 1:
                    machine.enqueue("r\(step)", now: at(now))
                    if let deadline = machine.timerToArm() { armed = deadline }
                case 2:
                    _ = machine.popHead()
                    if let deadline = machine.timerToArm() { armed = deadline }
                case 3:
                    writable.toggle()
                    if let deadline = machine.writabilityChanged(isWritable: writable, now: at(now)) { armed = deadline }
                default:
                    // The timer fires when it is due (the event loop never fires it early or late here).
                    guard let deadline = armed else { break }
                    now = max(now, Int64(deadline.uptimeNanoseconds / 1_000_000))
                    armed = nil
                    let overdue = machine.queue.first.map { $0.deadline <= deadline } ?? false
                    let outcome = machine.timerFired(now: deadline)
                    if overdue, case .readTimeout = outcome {} else if overdue { Issue.record("an overdue reply went unreported") }
                    switch outcome {
                    case .readTimeout, .writeTimeout: ended = true
                    case .rearm(let next):
                        #expect(next > deadline)
                        armed = next
                    case .idle: break
                    }
                }
                // The invariant: whatever is due has a timer armed at or before it.
                if !ended, let head = machine.queue.first {
                    #expect(armed != nil && armed! <= head.deadline)
                }
                if !ended, !writable {
                    #expect(armed != nil)
                }
            }
        }
    }
}

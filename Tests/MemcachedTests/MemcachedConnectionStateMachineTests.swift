import NIOCore
import Testing

@testable import Memcached

private typealias Machine = MemcachedConnectionStateMachine<Int>

private func at(_ milliseconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(milliseconds) * 1_000_000) }

extension Machine.ReplyAction {
    var success: (Int, MemcachedReply)? {
        if case .complete(let target, .success(let reply)) = self { (target, reply) } else { nil }
    }
    var failure: (Int, MemcachedError)? {
        if case .complete(let target, .failure(let error)) = self { (target, error) } else { nil }
    }
    var isNone: Bool { if case .none = self { true } else { false } }
    var connectionFailure: MemcachedError? { if case .fail(let error) = self { error } else { nil } }
}

@Suite("MemcachedConnectionStateMachine: replies, stats, failure and timers of one connection (no I/O)")
struct MemcachedConnectionStateMachineTests {
    private func machine() -> Machine {
        Machine(server: "127.0.0.1:11211", readTimeout: .milliseconds(250), writeTimeout: .milliseconds(100))
    }

    @Test("replies go to the requests in order; an error line fails its request alone")
    func repliesInOrder() {
        var state = machine()
        state.sent("mg", .one, 1, now: at(0))
        state.sent("ms", .one, 2, now: at(0))
        state.sent("md", .one, 3, now: at(0))
        #expect(state.received(.status(.miss, MetaFlags())).success?.0 == 1)
        let error = state.received(.error(.server, "out of memory storing object")).failure
        #expect(error?.0 == 2 && error?.1.code == .server && error?.1.server == "127.0.0.1:11211")
        #expect(state.received(.error(.client, "")).failure?.1.message == "CLIENT_ERROR")
        #expect(state.isOpen && state.pendingCount == 0)
    }

    @Test("a call given up: its waiting requests (a batch's all) are handed back and their replies, in their places, go nowhere")
    func abandon() {
        var state = machine()
        state.sent("mg", .one, 1, id: 1, now: at(0))
        state.sent("mg", .one, 2, id: 2, now: at(0))
        state.sent("mg", .one, 3, id: 2, now: at(0))
        state.sent("mg", .one, 4, id: 3, now: at(0))
        #expect(state.received(.status(.miss, MetaFlags())).success?.0 == 1)
        #expect(state.abandon(1, discard: 0).isEmpty, "answered already")
        #expect(state.abandon(2, discard: 0) == [2, 3])
        #expect(state.abandon(2, discard: 0) == [0, 0], "already given up: only the discard targets are left")
        #expect(state.received(.status(.miss, MetaFlags())).success?.0 == 0)
        #expect(state.received(.status(.miss, MetaFlags())).success?.0 == 0)
        #expect(state.received(.ok).success?.0 == 4, "the next request gets its own reply")
        #expect(state.isOpen && state.pendingCount == 0)
    }

    @Test("stats gathers its STAT lines up to END")
    func stats() {
        var state = machine()
        state.sent("stats", .stats, 1, now: at(0))
        #expect(state.received(.stat(name: "pid", value: "42")).isNone)
        #expect(state.received(.stat(name: "uptime", value: "7")).isNone)
        #expect(state.received(.end).success.map { $0.1 } == .stats(["pid": "42", "uptime": "7"]))
    }

    @Test("garbage: a reply with nothing waiting, a STAT or END without stats, a value inside stats")
    func garbage() {
        var state = machine()
        #expect(state.received(.ok).connectionFailure?.code == .protocolViolation)
        state.sent("mg", .one, 1, now: at(0))
        #expect(state.received(.end).connectionFailure?.code == .protocolViolation)
        var inStats = machine()
        inStats.sent("stats", .stats, 1, now: at(0))
        #expect(inStats.received(.ok).connectionFailure?.code == .protocolViolation)
    }

    @Test("the first failure hands back every waiting request once; the read deadline names the head request")
    func failureAndTimeout() {
        var state = machine()
        state.sent("mg", .one, 1, now: at(0))
        state.sent("mg", .one, 2, now: at(10))
        #expect(state.timerToArm() == at(250))
        guard case .fail(let timeout) = state.timerFired(now: at(250)) else {
            Issue.record("due")
            return
        }
        #expect(timeout.code == .readTimeout && timeout.message == "no reply to mg within 250 ms (2 request(s) pending)")
        let failure = state.fail(timeout)
        #expect(failure?.targets == [1, 2] && failure?.error.server == "127.0.0.1:11211")
        #expect(state.fail(MemcachedError(.connectionLost, message: "again")) == nil)
        #expect(!state.isOpen && state.failure?.code == .readTimeout)
    }

    @Test("a socket unwritable for the write timeout fails the connection; a close says how many requests waited")
    func writeTimeoutAndClose() {
        var state = machine()
        #expect(state.writabilityChanged(isWritable: false, now: at(0)) == at(100))
        guard case .fail(let error) = state.timerFired(now: at(100)) else {
            Issue.record("due")
            return
        }
        #expect(error.code == .writeTimeout)
        state.sent("mg", .one, 1, now: at(0))
        #expect(state.closedError().message == "the connection closed with 1 request(s) pending")
    }
}

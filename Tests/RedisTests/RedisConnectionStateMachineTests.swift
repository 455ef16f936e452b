import NIOCore
import RESP
import Testing

@testable import Redis

private typealias Machine = RedisConnectionStateMachine<Int>

private func at(_ milliseconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(milliseconds) * 1_000_000) }
private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
private func array(_ items: RESPValue...) -> RESPValue { .array(items) }

private func machine(readTimeout: TimeAmount? = .seconds(2)) -> Machine {
    Machine(endpoint: "127.0.0.1:6379", readTimeout: readTimeout, writeTimeout: .seconds(1))
}

extension Machine.ReplyAction {
    /// The target and value of a `.complete` with a success, else `nil`.
    var success: (Int, RESPValue)? {
        if case .complete(let target, .success(let value)) = self { (target, value) } else { nil }
    }
    var failure: (Int, RedisError)? {
        if case .complete(let target, .failure(let error)) = self { (target, error) } else { nil }
    }
    var isNone: Bool { if case .none = self { true } else { false } }
    var pushed: RESPValue? { if case .push(let value) = self { value } else { nil } }
    var connectionFailure: RedisError? { if case .fail(let error) = self { error } else { nil } }
}

@Suite("RedisConnectionStateMachine: replies, subscriptions, failure and timers of one connection (no I/O)")
struct RedisConnectionStateMachineTests {
    @Test("replies go to the commands in order; an error reply fails its command alone, named")
    func repliesInOrder() {
        var state = machine()
        #expect(state.send("SET", .one, 1, now: at(0)) == nil)
        #expect(state.send("INCR", .one, 2, now: at(0)) == nil)
        #expect(state.send("GET", .one, 3, now: at(0)) == nil)
        #expect(state.received(.simpleString("OK")).success?.0 == 1)
        let error = state.received(.error("WRONGTYPE Operation against a key holding the wrong kind of value")).failure
        #expect(error?.0 == 2 && error?.1.prefix == "WRONGTYPE" && error?.1.command == "INCR" && error?.1.endpoint == "127.0.0.1:6379")
        #expect(state.received(bulk("v")).success?.0 == 3)
        #expect(state.isOpen && state.pendingCount == 0)
    }

    @Test("a reply nobody asked for is a protocol violation; so is an array that looks like a message when nothing subscribes")
    func unaskedReply() {
        var state = machine()
        #expect(state.received(.simpleString("OK")).connectionFailure?.code == .protocolViolation)
        // Without a subscription, ["message", …] is the reply of the head command (LRANGE, say).
        #expect(state.send("LRANGE", .one, 7, now: at(0)) == nil)
        #expect(state.received(array(bulk("message"), bulk("a"), bulk("b"))).success?.0 == 7)
    }

    @Test("SUBSCRIBE a b: two confirmations answer it, then messages are pushes and other replies still answer commands")
    func subscribe() {
        var state = machine()
        #expect(state.send("SUBSCRIBE", .confirmations(.channel, count: 2), 1, now: at(0)) == nil)
        #expect(state.received(array(bulk("subscribe"), bulk("a"), .integer(1))).isNone)
        #expect(state.received(array(bulk("subscribe"), bulk("b"), .integer(2))).success?.0 == 1)
        #expect(state.subscribed(.channel) == ["a", "b"])
        #expect(state.received(array(bulk("message"), bulk("a"), bulk("hello"))).pushed != nil)
        #expect(state.send("PING", .one, 2, now: at(0)) == nil)
        #expect(state.received(array(bulk("pong"), bulk(""))).success?.0 == 2)
    }

    @Test("UNSUBSCRIBE of everything learns its count from the subscriptions: one confirmation per channel")
    func unsubscribeAll() {
        var state = machine()
        #expect(state.send("SUBSCRIBE", .confirmations(.channel, count: 3), 1, now: at(0)) == nil)
        for name in ["a", "b", "c"] { _ = state.received(array(bulk("subscribe"), bulk(name), .integer(1))) }
        #expect(state.send("UNSUBSCRIBE", .confirmations(.channel, count: nil), 2, now: at(0)) == nil)
        #expect(state.received(array(bulk("unsubscribe"), bulk("a"), .integer(2))).isNone)
        #expect(state.received(array(bulk("unsubscribe"), bulk("b"), .integer(1))).isNone)
        #expect(state.received(array(bulk("unsubscribe"), bulk("c"), .integer(0))).success?.0 == 2)
        #expect(state.subscribed(.channel).isEmpty)
        // With nothing subscribed, an UNSUBSCRIBE still gets its one confirmation.
        #expect(state.send("UNSUBSCRIBE", .confirmations(.channel, count: nil), 3, now: at(0)) == nil)
        #expect(state.received(array(bulk("unsubscribe"), .null, .integer(0))).success?.0 == 3)
    }

    @Test("a server-initiated sunsubscribe (a slot moved) answers nobody and ends the subscription; RESP3 pushes always go to the handler")
    func serverInitiated() {
        var state = machine()
        #expect(state.send("SSUBSCRIBE", .confirmations(.shard, count: 1), 1, now: at(0)) == nil)
        #expect(state.received(array(bulk("ssubscribe"), bulk("s"), .integer(1))).success?.0 == 1)
        #expect(state.send("GET", .one, 2, now: at(0)) == nil)
        #expect(state.received(.push([bulk("sunsubscribe"), bulk("s"), .integer(0)])).isNone)
        #expect(state.subscribed(.shard).isEmpty)
        #expect(state.received(.push([bulk("invalidate"), array(bulk("k"))])).pushed != nil)
        #expect(state.received(bulk("v")).success?.0 == 2)
    }

    @Test("the first failure fails every waiting command with its own name and answers every later one; a second changes nothing")
    func failure() {
        var state = machine()
        _ = state.send("GET", .one, 1, now: at(0))
        _ = state.send("SET", .one, 2, now: at(0))
        let failure = state.fail(RedisError(.connectionClosed, message: "gone"))
        #expect(failure?.error.endpoint == "127.0.0.1:6379" && failure?.error.command == "")
        #expect(failure?.commands.map(\.target) == [1, 2])
        #expect(failure?.commands.map(\.error.command) == ["GET", "SET"])
        #expect(state.fail(RedisError(.readTimeout, message: "late")) == nil)
        let refusal = state.send("PING", .one, 3, now: at(0))
        #expect(refusal?.code == .connectionClosed && refusal?.command == "PING" && refusal?.message == "gone")
        #expect(!state.isOpen && state.failure?.code == .connectionClosed)
    }

    @Test("a close inside a reply is a truncation; otherwise it says how many commands were waiting")
    func closed() {
        var state = machine()
        _ = state.send("GET", .one, 1, now: at(0))
        #expect(state.closedError(midReply: true).code == .protocolViolation)
        let error = state.closedError(midReply: false)
        #expect(error.code == .connectionClosed && error.message.contains("1 command(s) pending"))
    }

    @Test("the read deadline: the timer is armed for the head command and fails the connection with a read timeout naming it")
    func readTimeout() {
        var state = machine(readTimeout: .milliseconds(1500))
        _ = state.send("BLPOP", .one, 1, now: at(0))
        #expect(state.timerToArm() == at(1500))
        guard case .rearm(let next) = state.timerFired(now: at(1000)) else {
            Issue.record("not due yet")
            return
        }
        #expect(next == at(1500))
        guard case .fail(let error) = state.timerFired(now: at(1500)) else {
            Issue.record("due")
            return
        }
        #expect(error.code == .readTimeout && error.command == "BLPOP" && error.message == "no reply within 1500 ms (1 command(s) pending)")
        // Without a read timeout nothing is ever due.
        var untimed = machine(readTimeout: nil)
        _ = untimed.send("BLPOP", .one, 1, now: at(0))
        #expect(untimed.timerToArm() == nil)
    }

    @Test("the write deadline: a socket unwritable for the write timeout fails the connection")
    func writeTimeout() {
        var state = machine(readTimeout: nil)
        #expect(state.writabilityChanged(isWritable: false, now: at(0)) == at(1000))
        guard case .fail(let error) = state.timerFired(now: at(1000)) else {
            Issue.record("due")
            return
        }
        #expect(error.code == .writeTimeout && error.message == "the socket accepted nothing for 1000 ms")
    }
}

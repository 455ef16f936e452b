import NIOCore
import RESP
import Redis
import TestServers
import Testing

@Suite("Pub/sub: subscribe, psubscribe, unsubscribe, messages as an AsyncSequence")
struct RedisSubscriberTests {
    @Test("messages on channels and patterns arrive in order, binary payloads intact, under RESP2 and RESP3")
    func subscribeAndReceive() async throws {
        for version in [RedisProtocolVersion.resp2, .resp3] {
            let server = try await RedisServer.shared()
            var configuration = RedisConfiguration(port: server.port)
            configuration.protocolVersion = version
            let subscriber = try await RedisSubscriber.connect(configuration)
            let publisher = try await connectToShared()
            let prefix = uniqueKey()
            try await subscriber.subscribe(prefix + ":news", prefix + ":weather")
            try await subscriber.psubscribe(prefix + ":sport.*")
            let binary = ByteBuffer(bytes: [0, 13, 10, 255, 36])
            #expect(try await publisher.publish("first", to: prefix + ":news") == 1)
            #expect(try await publisher.publish(binary, to: prefix + ":weather") == 1)
            #expect(try await publisher.publish("goal", to: prefix + ":sport.football") == 1)
            #expect(try await publisher.publish("nobody", to: prefix + ":other") == 0)
            try await subscriber.ping()  // a command in subscriber mode still gets its own reply

            var received: [RedisPubSubMessage] = []
            for try await message in subscriber.messages {
                received.append(message)
                if received.count == 3 { break }
            }
            #expect(
                received == [
                    RedisPubSubMessage(channel: prefix + ":news", payload: ByteBuffer(string: "first")),
                    RedisPubSubMessage(channel: prefix + ":weather", payload: binary),
                    RedisPubSubMessage(
                        channel: prefix + ":sport.football", pattern: prefix + ":sport.*", payload: ByteBuffer(string: "goal")),
                ], "\(version)")

            try await subscriber.unsubscribe(prefix + ":news")
            #expect(try await publisher.publish("gone", to: prefix + ":news") == 0)
            try await subscriber.unsubscribe()  // every channel left
            try await subscriber.punsubscribe()
            #expect(try await publisher.publish("gone", to: prefix + ":weather") == 0)
            #expect(try await publisher.publish("gone", to: prefix + ":sport.tennis") == 0)
            try await subscriber.unsubscribe()  // nothing left to leave: still one confirmation, no hang
            await subscriber.close()
            await publisher.close()
            var after = 0
            for try await _ in subscriber.messages { after += 1 }
            #expect(after == 0)
        }
    }

    @Test("the server dying ends the message sequence with a connectionClosed error")
    func serverDeath() async throws {
        try await withPrivateServer("pubsub-kill") { server in
            let subscriber = try await RedisSubscriber.connect(RedisConfiguration(port: server.port))
            try await subscriber.subscribe("events")
            try await server.kill()
            do {
                for try await _ in subscriber.messages {}
                Issue.record("the sequence should end with an error")
            } catch let error as RedisError {
                #expect(error.code == .connectionClosed)
            }
            #expect(subscriber.isBroken)
            await #expect(throws: RedisError.self) { try await subscriber.subscribe("more") }
        }
    }
}

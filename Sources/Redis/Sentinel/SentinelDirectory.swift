import ConnectionKit
import Foundation
import Logging
import NIOCore
import RESP

/// One sentinel's answer to "where is the master of NAME?" (`SENTINEL MASTER NAME`).
enum SentinelAnswer: Sendable, Equatable {
    /// It names this address, with the config epoch of its view (higher: newer).
    case master(SentinelAddress, epoch: Int?)
    /// It does not monitor a master of that name.
    case unknownMaster
    /// It could not be asked: refused, timed out, wrong credentials, garbage.
    case failed(RedisError)

    /// Reads a `SENTINEL MASTER` reply (the master's fields: `ip`, `port`, `config-epoch`...)
    /// or its error (`ERR No such master with that name`).
    init(_ result: Result<RESPValue, RedisError>) {
        switch result {
        case .failure(let error) where error.code == .server && error.message.localizedCaseInsensitiveContains("no such master"):
            self = .unknownMaster
        case .failure(let error):
            self = .failed(error)
        case .success(let reply):
            let fields = SentinelDirectory.fields(reply)
            if let host = fields["ip"], !host.isEmpty, let port = fields["port"].flatMap({ Int($0) }), (1...65535).contains(port) {
                self = .master(SentinelAddress(host: host, port: port), epoch: fields["config-epoch"].flatMap { Int($0) })
            } else {
                var error = RedisError(.unexpectedReply, message: "SENTINEL MASTER answered \(String(describing: reply).prefix(120))")
                error.fromSentinel = true
                self = .failed(error)
            }
        }
    }

    /// What a set of answers that gave no usable master means, as one error: a
    /// failover in progress when a sentinel named an address (that did not answer
    /// as master); else the name is unknown when a sentinel said so; else no sentinel could be asked.
    static func problem(_ answers: [(SentinelAddress, SentinelAnswer)], masterName: String) -> RedisError {
        var error: RedisError
        if answers.contains(where: { if case .master = $0.1 { true } else { false } }) {
            error = RedisError(.failoverInProgress, message: "no address the sentinels name for \(masterName) answers as master")
        } else if answers.contains(where: { $0.1 == .unknownMaster }) {
            error = RedisError(.masterUnknown, message: "the sentinels do not know a master named \(masterName)")
        } else {
            let reasons = answers.map { address, answer -> String in
                guard case .failed(let failure) = answer else { return "" }
                let reason =
                    ["WRONGPASS", "NOAUTH", "NOPERM"].contains(failure.prefix)
                    ? "refused our credentials (\(failure.prefix))" : failure.code == .server ? failure.prefix : failure.code.name
                return "\(address) \(reason)"
            }
            error = RedisError(.sentinelsUnreachable, message: "no sentinel answered: \(reasons.joined(separator: ", "))")
        }
        error.fromSentinel = true
        return error
    }

    /// The address named with the highest config epoch (the newest view: a sentinel
    /// cut off on the old master's side, or one that has not heard of the last
    /// failover yet, has an older one); among equals, the one most answers name,
    /// then the earliest. `nil` when none names one.
    static func newest(_ answers: [(SentinelAddress, SentinelAnswer)]) -> (address: SentinelAddress, epoch: Int?)? {
        var best: [SentinelAddress: (epoch: Int, count: Int, first: Int)] = [:]
        for (index, (_, answer)) in answers.enumerated() {
            guard case .master(let address, let epoch) = answer else { continue }
            let seen = best[address] ?? (epoch: -1, count: 0, first: index)
            best[address] = (max(seen.epoch, epoch ?? -1), seen.count + 1, seen.first)
        }
        let winner = best.max { lhs, rhs in
            (lhs.value.epoch, lhs.value.count, -lhs.value.first) < (rhs.value.epoch, rhs.value.count, -rhs.value.first)
        }
        return winner.map { ($0.key, $0.value.epoch < 0 ? nil : $0.value.epoch) }
    }
}

/// The sentinels the client knows (the configured ones first, then those learnt
/// from `SENTINEL sentinels`), each with a connection kept open for questions.
/// A connection that fails is dropped and made again at the next question.
final class SentinelDirectory: Sendable {
    private struct State: Sendable {
        var known: [SentinelAddress]
        var connections: [SentinelAddress: RedisConnection] = [:]
        var closed = false
    }

    private let configuration: SentinelConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state: Locked<State>

    init(configuration: SentinelConfiguration, known: [SentinelAddress], group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.state = Locked(State(known: known))
    }

    /// Every sentinel known now, configured ones first.
    var known: [SentinelAddress] { state.withLock { $0.known } }

    /// Adds sentinels learnt from `SENTINEL sentinels` (never drops configured ones).
    func learn(_ addresses: [SentinelAddress]) {
        let added = state.withLock { state -> [SentinelAddress] in
            let new = addresses.filter { !state.known.contains($0) }
            state.known += new
            return new
        }
        if !added.isEmpty { logger.info("learnt sentinels", metadata: ["sentinels": "\(added)"]) }
    }

    /// Sends `command` to the sentinel at `address` and waits at most the sentinel
    /// timeout (or until cancelled) for the reply; errors carry ``RedisError/fromSentinel``.
    func ask(_ address: SentinelAddress, _ command: RedisCommand) async -> Result<RESPValue, RedisError> {
        let result: Result<RESPValue, RedisError>
        switch await connection(to: address) {
        case .failure(let error):
            result = .failure(error)
        case .success(let connection):
            result = await connection.send(command, within: configuration.sentinelTimeout)
            if case .failure(let error) = result, error.isConnectionError { drop(connection, of: address) }
        }
        return result.mapError { error in
            var error = error.at(address.description)
            error.fromSentinel = true
            return error
        }
    }

    /// Asks every known sentinel where `masterName`'s master is (`SENTINEL MASTER`),
    /// in parallel, and hands each answer to `consider` as it comes until `consider`
    /// returns true. The other questions are not cancelled (that would close
    /// connections other questions share): they end within the sentinel timeout.
    /// Returns every answer received.
    @discardableResult
    func askMasterAddress(
        of masterName: String, _ consider: @escaping @Sendable (SentinelAddress, SentinelAnswer) async -> Bool = { _, _ in false }
    ) async -> [(SentinelAddress, SentinelAnswer)] {
        let command = RedisCommand("SENTINEL", "MASTER", masterName)
        return await withTaskGroup(of: (SentinelAddress, SentinelAnswer).self) { group in
            for address in known {
                group.addTask { (address, SentinelAnswer(await self.ask(address, command))) }
            }
            var answers: [(SentinelAddress, SentinelAnswer)] = []
            var decided = false
            for await answer in group {
                answers.append(answer)
                if !decided { decided = await consider(answer.0, answer.1) }
            }
            return answers
        }
    }

    /// The `ip`/`port` entries of a `SENTINEL sentinels` or `SENTINEL replicas` reply,
    /// with their flags; entries without a usable address are skipped.
    static func instances(_ reply: RESPValue) -> [(address: SentinelAddress, flags: Set<String>)] {
        guard let entries = reply.elements else { return [] }
        return entries.compactMap { entry in
            let fields = Self.fields(entry)
            guard let host = fields["ip"], !host.isEmpty, let port = fields["port"].flatMap({ Int($0) }), (1...65535).contains(port) else {
                return nil
            }
            let flags = Set((fields["flags"] ?? "").split(separator: ",").map(String.init))
            return (SentinelAddress(host: host, port: port), flags)
        }
    }

    /// A flat key/value array (RESP2) or a map (RESP3) as a dictionary of strings.
    static func fields(_ value: RESPValue) -> [String: String] {
        var fields: [String: String] = [:]
        if case .map(let pairs) = value {
            for pair in pairs { if let key = pair.key.string, let item = pair.value.string { fields[key] = item } }
        } else if let items = value.elements {
            for index in stride(from: 0, to: items.count - 1, by: 2) {
                if let key = items[index].string, let item = items[index + 1].string { fields[key] = item }
            }
        }
        return fields
    }

    /// Closes every connection; later questions fail. Safe to call repeatedly.
    func close() async {
        let open = state.withLock { state -> [RedisConnection] in
            state.closed = true
            defer { state.connections.removeAll() }
            return Array(state.connections.values)
        }
        for connection in open { await connection.close() }
    }

    private func connection(to address: SentinelAddress) async -> Result<RedisConnection, RedisError> {
        let (existing, closed) = state.withLock { ($0.connections[address], $0.closed) }
        if closed { return .failure(RedisError(.clientClosed, message: "the sentinel client is closed")) }
        if let existing, !existing.isBroken { return .success(existing) }
        do {
            let connection = try await RedisConnection.connect(configuration.sentinelConnection(address), on: group, logger: logger)
            // Two questions may have connected at once: the first connection kept is used by both.
            let kept = state.withLock { state -> RedisConnection? in
                guard !state.closed else { return nil }
                if let other = state.connections[address], !other.isBroken { return other }
                state.connections[address] = connection
                return connection
            }
            if kept !== connection { await connection.close() }
            guard let kept else { return .failure(RedisError(.clientClosed, message: "the sentinel client is closed")) }
            return .success(kept)
        } catch {
            return .failure(error)
        }
    }

    private func drop(_ connection: RedisConnection, of address: SentinelAddress) {
        state.withLock { state in
            if state.connections[address] === connection { state.connections[address] = nil }
        }
    }
}

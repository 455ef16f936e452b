import NIOCore

/// What a command does to its connection's session beyond its own reply: state that the
/// next command on that connection would run under (a transaction queueing it, another
/// database, subscribe mode, replies switched off, another user).
enum RedisSessionEffect: Equatable {
    /// Nothing: `GET`, `SET` and almost every command.
    case none
    /// `MULTI`: later commands are queued (answered `+QUEUED`), not run.
    case opensTransaction
    /// `EXEC`, `DISCARD`: the transaction and any `WATCH` end.
    case endsTransaction
    /// `WATCH`: the next `EXEC` fails if a watched key changes.
    case watches
    /// `UNWATCH`.
    case unwatches
    /// `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE`: the connection takes only subscription commands.
    case subscribes
    /// `SELECT`, `AUTH`, `HELLO`, `RESET`, `READONLY`, `QUIT`, the unsubscribes, and
    /// `CLIENT TRACKING`/`CACHING`/`SETNAME`/`SETINFO`/`NO-EVICT`/`NO-TOUCH`: the session
    /// differs from a new one until reset.
    case changesSession
    /// `CLIENT REPLY` and `MONITOR`: replies would stop coming, or come unasked, and each
    /// request would receive another's reply. Never sent.
    case breaksReplies

    /// The effect of `command`. Most names are told apart by their length alone (no tracked
    /// command has 3 letters: `GET`, `SET` and `DEL` cost one comparison of a length).
    static func of(_ command: RedisCommand) -> RedisSessionEffect {
        let name = command.name.utf8
        switch name.count {
        case 4:
            if equalsIgnoringCase(name, "EXEC") { return .endsTransaction }
            if equalsIgnoringCase(name, "AUTH") || equalsIgnoringCase(name, "QUIT") { return .changesSession }
        case 5:
            if equalsIgnoringCase(name, "MULTI") { return .opensTransaction }
            if equalsIgnoringCase(name, "WATCH") { return .watches }
            if equalsIgnoringCase(name, "HELLO") || equalsIgnoringCase(name, "RESET") { return .changesSession }
        case 6:
            if equalsIgnoringCase(name, "SELECT") { return .changesSession }
            if equalsIgnoringCase(name, "CLIENT") { return clientSubcommandEffect(command) }
        case 7:
            if equalsIgnoringCase(name, "DISCARD") { return .endsTransaction }
            if equalsIgnoringCase(name, "UNWATCH") { return .unwatches }
            if equalsIgnoringCase(name, "MONITOR") { return .breaksReplies }
        case 8:
            if equalsIgnoringCase(name, "READONLY") { return .changesSession }
        case 9:
            if equalsIgnoringCase(name, "SUBSCRIBE") { return .subscribes }
        case 10:
            if equalsIgnoringCase(name, "PSUBSCRIBE") || equalsIgnoringCase(name, "SSUBSCRIBE") { return .subscribes }
        case 11:
            if equalsIgnoringCase(name, "UNSUBSCRIBE") { return .changesSession }
        case 12:
            if equalsIgnoringCase(name, "PUNSUBSCRIBE") || equalsIgnoringCase(name, "SUNSUBSCRIBE") { return .changesSession }
        default:
            break
        }
        return .none
    }

    private static func equalsIgnoringCase(_ name: String.UTF8View, _ upper: StaticString) -> Bool {
        guard name.count == upper.utf8CodeUnitCount else { return false }
        return upper.withUTF8Buffer { expected in
            zip(name, expected).allSatisfy { byte, want in byte == want || (byte >= 0x61 && byte <= 0x7A && byte - 0x20 == want) }
        }
    }

    /// What a `CLIENT` command's subcommand (its first argument, read from the encoded command)
    /// does: `CLIENT LIST`, `ID`, `INFO`, `GETNAME` and the like change nothing.
    private static func clientSubcommandEffect(_ command: RedisCommand) -> RedisSessionEffect {
        // *N\r\n $6\r\n CLIENT\r\n $L\r\n SUBCOMMAND\r\n
        var buffer = command.encoded
        var lines = 0
        while lines < 4, buffer.readLineBytes() != nil { lines += 1 }
        guard lines == 4, let subcommand = buffer.readLineBytes() else { return .changesSession }  // unreadable: assume it does
        let word = String(decoding: subcommand, as: UTF8.self).uppercased()
        if word == "REPLY" { return .breaksReplies }
        return ["TRACKING", "CACHING", "SETNAME", "SETINFO", "NO-EVICT", "NO-TOUCH"].contains(word) ? .changesSession : .none
    }
}

extension ByteBuffer {
    /// The bytes up to the next CRLF, which is consumed too; `nil` when there is none.
    fileprivate mutating func readLineBytes() -> [UInt8]? {
        guard let view = readableBytesView.firstIndex(of: UInt8(ascii: "\r")) else { return nil }
        let length = view - readerIndex
        guard let bytes = readBytes(length: length), readBytes(length: 2) != nil else { return nil }
        return bytes
    }
}

/// The session state of one connection, as the commands sent on it left it (``RedisSessionEffect``).
struct RedisSessionState: OptionSet, Sendable {
    let rawValue: UInt8

    /// Inside `MULTI`.
    static let inTransaction = RedisSessionState(rawValue: 1)
    /// Keys are watched.
    static let watching = RedisSessionState(rawValue: 2)
    /// In subscribe mode: only closing makes it new again.
    static let subscribed = RedisSessionState(rawValue: 4)
    /// Another database, user, protocol or reply mode, until `RESET` and the handshake again.
    static let changed = RedisSessionState(rawValue: 8)

    /// `self` after a command with `effect` was sent.
    func after(_ effect: RedisSessionEffect) -> RedisSessionState {
        switch effect {
        case .none: self
        case .opensTransaction: union(.inTransaction)
        case .endsTransaction: subtracting([.inTransaction, .watching])
        case .watches: union(.watching)
        case .unwatches: subtracting(.watching)
        case .subscribes: union(.subscribed)
        case .changesSession: union(.changed)
        case .breaksReplies: self  // never sent
        }
    }
}

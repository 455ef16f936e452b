import Foundation

/// Hides the secrets of a DSN before it is shown anywhere (descriptions,
/// errors, logs, statistics, the tool's output).
///
/// Structure, not search: the DSN is parsed into its parts and printed again
/// with every secret replaced by `***`, so a password is hidden whatever it
/// holds (spaces, quotes, `@`, `:`, `%`, non-ASCII) and however short it is.
/// The forms:
/// - URLs, `scheme://[user[:password]@]host[:port][,…][/path][?key=value&…]`
///   (PostgreSQL, MariaDB/MySQL, Redis): the user info is everything before
///   the last `@` (a password may hold an unencoded `@`, `/` or `?`);
/// - libpq keyword/value strings, `host=db password='a b' …`, with quotes and
///   backslash escapes as libpq reads them (a DSN that starts with `key=`);
/// - the Go-MySQL form, `user:password@tcp(host:port)/db?…` (also `unix(…)`
///   and `user:password@/db`), without white space;
/// - a SQLite path or name, or a `host:port`, is shown as is.
///
/// Secret keys, in query strings and keyword strings alike: `password`,
/// `pass`, `pwd`, `sslpassword`, `sentinel_password`, `secret`, `token`.
/// Where a malformed DSN could put a piece of a password elsewhere, that is
/// hidden too: the value of a keyword libpq does not know, a query value with
/// characters beyond letters, digits and `_.-:/%,+`.
/// A DSN that cannot be parsed is shown as its scheme only
/// (`postgres://<unparsable>`), or `<unparsable DSN>`.
public enum DSNRedaction {
    /// The DSN with its secrets replaced by `***` (see the type's documentation).
    public static func redact(_ dsn: String) -> String {
        if let url = redactURL(dsn) { return url }
        if startsWithKeyword(dsn) { return redactKeywords(dsn) ?? unparsable }
        if let goForm = redactGoMySQL(dsn) { return goForm }
        if dsn.contains("=") { return redactKeywords(dsn) ?? unparsable }
        return isPathOrEndpoint(dsn) ? dsn : unparsable
    }

    /// A SQLite path (`app.sqlite`, `/srv/app.db`, `file:…`, `:memory:`) or a `host:port`: no
    /// secret in it. Anything else (`user:password` cut short, say) is not shown.
    private static func isPathOrEndpoint(_ text: String) -> Bool {
        guard !text.contains("@") else { return false }
        if !text.contains(":") || text.hasPrefix("/") || text.hasPrefix("file:") || text.hasPrefix(":memory:") { return true }
        guard let colon = text.lastIndex(of: ":") else { return true }
        let host = text[..<colon]
        let port = text[text.index(after: colon)...]
        return !host.isEmpty && !port.isEmpty && port.allSatisfy(\.isASCII) && port.allSatisfy(\.isNumber)
            && host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-_[]:".contains($0)) }
    }

    /// `key =` at the start (white space allowed): a libpq keyword string, never a Go-MySQL DSN.
    private static func startsWithKeyword(_ dsn: String) -> Bool {
        let text = dsn.drop(while: \.isWhitespace)
        let key = text.prefix(while: { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        guard let first = key.first, first.isLetter || first == "_" else { return false }
        return text.dropFirst(key.count).drop(while: \.isWhitespace).first == "="
    }

    /// What an unparsable DSN without a scheme becomes.
    package static let unparsable = "<unparsable DSN>"

    /// Whether `key` (a query or keyword key) names a secret.
    static func isSecretKey(_ key: some StringProtocol) -> Bool {
        secretKeys.contains(key.lowercased())
    }

    private static let secretKeys: Set<String> = ["password", "pass", "pwd", "sslpassword", "sentinel_password", "secret", "token"]

    /// The scheme of a URL-form DSN (`postgres`, `mysql`, …), when it has one.
    static func scheme(of dsn: String) -> String? {
        guard let separator = dsn.range(of: "://") else { return nil }
        let scheme = dsn[..<separator.lowerBound]
        guard let first = scheme.first, first.isASCII, first.isLetter,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) })
        else { return nil }
        return String(scheme)
    }

    // MARK: URLs

    private static func redactURL(_ dsn: String) -> String? {
        guard let scheme = scheme(of: dsn), let separator = dsn.range(of: "://") else { return nil }
        var rest = dsn[separator.upperBound...]
        var userPart = ""
        if let at = rest.lastIndex(of: "@") {
            userPart = redactUserInfo(rest[..<at]) + "@"
            rest = rest[rest.index(after: at)...]
        }
        let (location, query) = splitOnce(rest, "?")
        // Without an @, a location that is not hosts and ports may be `user:password` cut short.
        let (authority, path) = splitOnce(location, "/")
        guard isHostList(authority) else { return "\(scheme)://<unparsable>" }
        let shown = path.map { "\(authority)/\(plainOrHidden($0))" } ?? String(authority)
        guard let query else { return "\(scheme)://\(userPart)\(shown)" }
        guard let redactedQuery = redactQuery(query) else { return "\(scheme)://<unparsable>" }
        return "\(scheme)://\(userPart)\(shown)?\(redactedQuery)"
    }

    /// `host[:port][,host[:port]…]` (IPv6 in brackets, `%`-escaped socket folders), or nothing.
    private static func isHostList(_ authority: Substring) -> Bool {
        authority.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { entry in
            var host = entry[...]
            var port: Substring = ""
            if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
                host = entry[entry.index(after: entry.startIndex)..<close]
                let after = entry[entry.index(after: close)...]
                guard after.isEmpty || after.hasPrefix(":") else { return false }
                port = after.dropFirst()
            } else if let colon = entry.lastIndex(of: ":") {
                host = entry[..<colon]
                port = entry[entry.index(after: colon)...]
            }
            let hostCharacters = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-_%:".contains($0)) }
            let hasPort = entry.hasPrefix("[") ? entry.contains("]:") : entry.contains(":")
            return hostCharacters && (!hasPort || !port.isEmpty) && port.allSatisfy { $0.isASCII && $0.isNumber }
        }
    }

    /// `user:***`, `user` or `***`: the user is shown only when it is plainly a user name.
    private static func redactUserInfo(_ info: Substring) -> String {
        let (user, password) = splitOnce(info, ":")
        guard !user.contains(where: { "/?&=#@".contains($0) || $0.isWhitespace }) else { return "***" }
        return password == nil ? String(user) : "\(user):***"
    }

    /// `key=value&…` with secret values replaced; `nil` when a pair is not `key=value`.
    private static func redactQuery(_ query: Substring) -> String? {
        var pairs: [String] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            if pair.isEmpty {
                pairs.append("")
                continue
            }
            let (key, value) = splitOnce(pair, "=")
            guard let value, !key.isEmpty, key.allSatisfy(isPlain) else { return nil }
            let secret = isSecretKey(key) || isSecretKey(String(key).removingPercentEncoding ?? "") || !value.allSatisfy(isPlain)
            pairs.append(secret ? "\(key)=***" : String(pair))
        }
        return pairs.joined(separator: "&")
    }

    /// `text` when it is plain (``isPlain(_:)``), else `***`: a database name with other characters may be
    /// a piece of a password in a DSN cut short (`user:pa@/ss`, from `user:pa@/ss@tcp(host)/db`).
    private static func plainOrHidden(_ text: Substring) -> String {
        text.allSatisfy(isPlain) ? String(text) : "***"
    }

    /// A character of a plain query key or value (a value with others is not shown: it may be a piece of a password).
    private static func isPlain(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "_.-:/%,+".contains(character))
    }

    // MARK: Go-MySQL

    private static let goNetworks = ["tcp(", "tcp4(", "tcp6(", "unix("]

    private static func redactGoMySQL(_ dsn: String) -> String? {
        guard !dsn.contains(where: \.isWhitespace) else { return nil }  // MariaDB refuses such DSNs too
        // The last @ that opens an address (or the path): a password may hold an @ itself.
        var candidate = dsn.endIndex
        while let at = dsn[..<candidate].lastIndex(of: "@") {
            let after = dsn[dsn.index(after: at)...]
            if after.hasPrefix("/") || goNetworks.contains(where: { after.hasPrefix($0) }) {
                let (address, query) = splitOnce(after, "?")
                // The database after the address; an address `unix(/a/b)` holds slashes of its own.
                // `tcp(` without its `)` is no address at all.
                guard let databaseStart = after.hasPrefix("/") ? address.startIndex : address.lastIndex(of: ")").map(address.index(after:))
                else { return unparsable }
                let database = address[databaseStart...].drop(while: { $0 == "/" })
                let location = "\(address[..<database.startIndex])\(plainOrHidden(database))"
                let user = redactUserInfo(dsn[..<at])
                guard let query else { return "\(user)@\(location)" }
                guard let redactedQuery = redactQuery(query) else { return unparsable }
                return "\(user)@\(location)?\(redactedQuery)"
            }
            candidate = at
        }
        return nil
    }

    // MARK: libpq keywords

    /// `key=value` pairs separated by white space; a value is bare (up to white space, `\`
    /// escaping the next character) or in single quotes (`\` escaping `'` and `\`).
    private static func redactKeywords(_ dsn: String) -> String? {
        var pairs: [String] = []
        var index = dsn.startIndex
        func skipSpace() { while index < dsn.endIndex, dsn[index].isWhitespace { index = dsn.index(after: index) } }
        while true {
            skipSpace()
            guard index < dsn.endIndex else { break }
            let keyStart = index
            while index < dsn.endIndex, dsn[index] != "=", !dsn[index].isWhitespace { index = dsn.index(after: index) }
            let key = dsn[keyStart..<index]
            skipSpace()
            guard let first = key.first, first.isLetter || first == "_",
                key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }),
                index < dsn.endIndex, dsn[index] == "="
            else { return nil }
            index = dsn.index(after: index)
            skipSpace()
            var value = ""
            if index < dsn.endIndex, dsn[index] == "'" {
                index = dsn.index(after: index)
                var closed = false
                while index < dsn.endIndex {
                    let character = dsn[index]
                    index = dsn.index(after: index)
                    if character == "'" {
                        closed = true
                        break
                    }
                    if character == "\\", index < dsn.endIndex {
                        value.append(dsn[index])
                        index = dsn.index(after: index)
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { return nil }
            } else {
                while index < dsn.endIndex, !dsn[index].isWhitespace {
                    if dsn[index] == "\\" {
                        index = dsn.index(after: index)
                        guard index < dsn.endIndex else { break }
                    }
                    value.append(dsn[index])
                    index = dsn.index(after: index)
                }
            }
            let shown = !isSecretKey(key) && libpqKeywords.contains(String(key))
            pairs.append(shown ? "\(key)=\(quotedKeywordValue(value))" : "\(key)=***")
        }
        return pairs.joined(separator: " ")
    }

    /// libpq's keywords whose values are shown; another key's value is hidden (it may be a piece of
    /// an unquoted password with spaces: `password=a b=c` is two pairs to a parser).
    private static let libpqKeywords: Set<String> = [
        "host", "hostaddr", "port", "dbname", "user", "passfile", "channel_binding", "connect_timeout",
        "client_encoding", "options", "application_name", "fallback_application_name", "keepalives",
        "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout", "replication",
        "gssencmode", "sslmode", "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslcertmode",
        "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
        "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
        "target_session_attrs", "load_balance_hosts",
    ]

    /// A value as libpq reads it back: bare when it has no space, quote or backslash, else quoted.
    private static func quotedKeywordValue(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "'" || $0 == "\\" }) else { return value }
        return "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    private static func splitOnce(_ text: Substring, _ separator: Character) -> (Substring, Substring?) {
        guard let index = text.firstIndex(of: separator) else { return (text, nil) }
        return (text[..<index], text[text.index(after: index)...])
    }
}

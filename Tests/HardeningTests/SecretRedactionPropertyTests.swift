import ClusterConfig
import Foundation
import MariaDBBackend
import PostgresBackend
import PropertyBased
import Redis
import SQLCore
import Testing

/// Random passwords in every DSN form: no output of any path shows them.
///
/// Each password holds at least one character from `markers`, which nothing
/// else in the DSNs or in any message holds, so a leak of any part of the
/// password that includes one is caught even when the password is a single
/// character; the well-formed DSNs are also compared with their exact redacted form.
@Suite("secrets: random passwords never reach any output")
struct SecretRedactionPropertyTests {
    static let markers: [Character] = ["é", "漢", "🚀", "§", "ü"]
    /// The rest of a password: the characters that break naive redaction.
    static let nasty: [Character] = Array("aZ09 '\"\\@%:/?&=;#+,()[]{}$`~!*\t") + markers

    static let password = zip(
        Gen.element(of: markers), Gen.element(of: nasty).array(of: 0...10), Gen.int(in: 0...10)
    ).map { marker, others, position -> String in
        var characters = others.compactMap { $0 }
        characters.insert(marker ?? "é", at: min(position, characters.count))
        return String(characters)
    }
    static let name = Gen.character(in: "a"..."z").string(of: 1...8)
    static let host = Gen.element(of: ["127.0.0.1", "db", "db.example.com", "[::1]"]).map { $0 ?? "db" }

    /// Every character a URL's user info may hold unescaped is ASCII alphanumeric here; the rest is escaped.
    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")) ?? text
    }

    static func keywordQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// The DSNs of every form for one password, with the redacted text expected where the form is well formed.
    static func dsns(password: String, user: String, host: String, database: String) -> [(dsn: String, expected: String?)] {
        let encoded = percentEncoded(password)
        return [
            (
                "host=\(host) port=5432 user=\(user) password=\(keywordQuoted(password)) dbname=\(database)",
                "host=\(host) port=5432 user=\(user) password=*** dbname=\(database)"
            ),
            ("host=\(host) password=\(password) dbname=\(database)", nil),  // unquoted: malformed when it holds a space or quote
            (
                "postgres://\(user):\(encoded)@\(host):5432/\(database)?sslmode=disable",
                "postgres://\(user):***@\(host):5432/\(database)?sslmode=disable"
            ),
            ("postgresql://\(user):\(password)@\(host)/\(database)", nil),
            ("postgres://\(host)/\(database)?user=\(user)&password=\(encoded)", "postgres://\(host)/\(database)?user=\(user)&password=***"),
            ("mysql://\(user):\(password)@\(host):3306/\(database)?tls=false", nil),
            ("mariadb://\(user):\(encoded)@\(host)/\(database)", "mariadb://\(user):***@\(host)/\(database)"),
            ("\(user):\(password)@tcp(\(host):3306)/\(database)?parseTime=true", nil),
            ("\(user):\(encoded)@tcp(\(host):3306)/\(database)", "\(user):***@tcp(\(host):3306)/\(database)"),
            ("redis://\(user):\(encoded)@\(host):6379/0", "redis://\(user):***@\(host):6379/0"),
            ("redis://:\(password)@\(host):6379", nil),
        ]
    }

    /// What every path shows of `dsn`: the redacted text, the drivers' and clients' parse errors and
    /// descriptions, the configuration's node description and its loader's errors.
    static func outputs(of dsn: String) -> [String] {
        var shown = [DSNRedaction.redact(dsn), NodeConfiguration(name: "n", dsn: dsn).description]
        do { _ = try PostgresConfiguration(dsn: dsn) } catch { shown.append(error.description) }
        do { _ = try MariaDBConfiguration(dsn: dsn) } catch { shown.append(error.description) }
        do { shown.append(try RedisConfiguration(url: dsn).description) } catch { shown.append(error.description) }
        let toml = """
            [[clusters.c.nodes]]
            name = "n"
            dsn = "\(dsn.unicodeScalars.map { "\\u\(String(format: "%08X", $0.value))" }.joined())"
            """
        do {
            let configuration = try ConfigurationLoader.parse(
                "[clusters.c]\ndriver = \"postgres\"\n" + toml, file: "c.toml", baseDirectory: "/tmp", environment: [:])
            shown += configuration.clusters.flatMap { $0.nodes.map(\.description) }
        } catch {
            shown.append(error.description)
        }
        return shown
    }

    static func expectNoLeak(_ dsn: String, password: String) {
        for output in outputs(of: dsn) {
            #expect(!output.contains(password), "\(output)")
            #expect(!output.contains(percentEncoded(password)), "\(output)")
            #expect(!output.contains(where: { markers.contains($0) }), "\(output)")
        }
    }

    @Test("well-formed DSNs of every form: redacted exactly, and no output shows the password")
    func wellFormed() async {
        await propertyCheck(count: 300, input: Self.password, Self.name, Self.host, Self.name) { password, user, host, database in
            for (dsn, expected) in Self.dsns(password: password, user: user, host: host, database: database) {
                if let expected { #expect(DSNRedaction.redact(dsn) == expected, "\(dsn)") }
                Self.expectStable(dsn)
                Self.expectNoLeak(dsn, password: password)
            }
        }
    }

    /// Redacting a redacted DSN changes nothing: the first pass left no secret to find, and its output
    /// is a DSN of the same form (or the unparsable marker).
    static func expectStable(_ dsn: String) {
        let once = DSNRedaction.redact(dsn)
        guard once != DSNRedaction.unparsable, !once.hasSuffix("<unparsable>") else { return }
        #expect(DSNRedaction.redact(once) == once, "\(dsn): \(once)")
    }

    /// When the cut ends inside the raw password of `dsn` (`user:password@…`) after an `@` of the
    /// password's own, the part of the password before that `@`: what parsers read as the password.
    static func passwordBeforeOwnAt(_ dsn: String, password: String, cut: Int) -> String? {
        guard let range = dsn.range(of: ":" + password) else { return nil }
        let start = dsn.distance(from: dsn.startIndex, to: range.lowerBound) + 1
        guard cut > start, cut <= start + password.count else { return nil }
        let kept = password.prefix(cut - start)
        return kept.lastIndex(of: "@").map { String(kept[..<$0]) }
    }

    @Test("malformed DSNs (cut anywhere, or with garbage after): no output shows the password or a piece of it")
    func malformed() async {
        await propertyCheck(
            count: 300, input: Self.password, Self.name, Gen.int(in: 0...200),
            Gen.element(of: ["", "'", "\"", "%", "%zz", " x", "@", "?=", "&&", "\\"]).map { $0 ?? "" }
        ) {
            password, user, cut, garbage in
            for (dsn, _) in Self.dsns(password: password, user: user, host: "db", database: "app") {
                let broken = String(dsn.prefix(cut)) + garbage
                Self.expectStable(broken)
                // A cut inside a raw password after an `@` of its own leaves a DSN whose structure says
                // otherwise: `t:@/é` (from `t:@/é@tcp(db)/app`) is user t, no password, database é, to any
                // parser. Then only the part before the last `@` is the password, and it must be hidden in place.
                if let secret = Self.passwordBeforeOwnAt(dsn, password: password, cut: cut) {
                    let redacted = DSNRedaction.redact(broken)  // the password hidden in place, or nothing but the scheme
                    #expect(secret.isEmpty || redacted.contains(":***@") || redacted.contains("<unparsable"), "\(broken): \(redacted)")
                    for output in Self.outputs(of: broken) where !secret.isEmpty {
                        #expect(!output.contains(":\(secret)@"), "\(broken): \(output)")
                    }
                    continue
                }
                Self.expectNoLeak(broken, password: password)
            }
        }
    }

    @Test("a password found in a driver's message is hidden; a short one only where it stands alone")
    func messages() {
        let long = SQLError(.authenticationFailed, message: "password 'hunter22' refused", detail: "hunter22")
        #expect(long.redacting(password: "hunter22").message == "password '***' refused")
        #expect(long.redacting(password: "hunter22").detail == "***")
        let short = SQLError(.authenticationFailed, message: "authentication failed for user \"x\" with x")
        #expect(short.redacting(password: "x").message == "authentication failed for user \"***\" with ***")
        #expect(short.redacting(password: "a").message == short.message, "a short password inside words is left")
    }

    @Test("libpq's parse errors keep their words but not the DSN they quote")
    func libpqEcho() {
        for dsn in ["postgres://u:p%zzw@h/d", "postgres://u:pw@[::1/d", "host=h password", "host='unterminated"] {
            do {
                _ = try PostgresConfiguration(dsn: dsn)
                Issue.record("expected an error for \(dsn)")
            } catch {
                #expect(error.code == .invalidConfiguration)
                #expect(
                    !error.description.contains("p%zzw") && !error.description.contains("pw@")
                        && !error.description.contains("unterminated\""))
            }
        }
    }
}

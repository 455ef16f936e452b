import MariaDBBackend
import SQLCore
import Testing

/// DSN parsing: both forms, their parameters, and typed errors that never echo a password.
@Suite("MariaDB DSNs")
struct MariaDBConfigurationTests {
    @Test("the URL form, with percent-encoded credentials and IPv6")
    func urlForm() throws {
        let c = try MariaDBConfiguration(dsn: "mysql://app:p%40ss%2Fw@db.example:3307/shop?tls=skip-verify&timeout=1.5s&readTimeout=200ms")
        #expect(c.user == "app")
        #expect(c.host == "db.example")
        #expect(c.port == 3307)
        #expect(c.database == "shop")
        #expect(c.tls == .required)
        #expect(c.connectTimeout == .milliseconds(1500))
        #expect(c.queryTimeout == .milliseconds(200))
        let v6 = try MariaDBConfiguration(dsn: "mariadb://root@[::1]:3306/")
        #expect(v6.host == "::1")
        #expect(v6.database == nil)
        #expect(v6.address == "[::1]:3306")
        let raw = try MariaDBConfiguration(dsn: "mysql://u:a/b@c@127.0.0.1/db")  // unencoded / and @ in the password
        #expect(raw.host == "127.0.0.1")
        #expect(raw.port == 3306)
        #expect(raw.database == "db")
    }

    @Test("dead-server bounds: 30 s TCP user timeout and a liveness check after 10 s by default; set or turned off in the DSN")
    func deadServerBounds() throws {
        let plain = try MariaDBConfiguration(dsn: "mysql://u@127.0.0.1/db")
        #expect(plain.tcpUserTimeout == .seconds(30))
        #expect(plain.livenessCheckAfter == .seconds(10))
        let set = try MariaDBConfiguration(dsn: "mysql://u@127.0.0.1/db?tcpUserTimeout=5s&livenessCheck=2s")
        #expect(set.tcpUserTimeout == .seconds(5))
        #expect(set.livenessCheckAfter == .seconds(2))
        let off = try MariaDBConfiguration(dsn: "u@tcp(127.0.0.1:3306)/db?tcp_user_timeout=0&liveness_check=0")
        #expect(off.tcpUserTimeout == nil)
        #expect(off.livenessCheckAfter == nil)
        #expect(throws: SQLError.self) { try MariaDBConfiguration(dsn: "mysql://u@127.0.0.1/db?livenessCheck=-1s") }
    }

    @Test("the Go-MySQL form of the clustersql seed: tcp(), unix(), no address")
    func goForm() throws {
        let tcp = try MariaDBConfiguration(dsn: "root:secret@tcp(10.0.0.5:3306)/app?parseTime=true&charset=utf8mb4")
        #expect(tcp.user == "root")
        #expect(tcp.host == "10.0.0.5")
        #expect(tcp.database == "app")
        let unix = try MariaDBConfiguration(dsn: "app@unix(/run/mysqld/mysqld.sock)/app")
        #expect(unix.unixSocket == "/run/mysqld/mysqld.sock")
        #expect(unix.address == "/run/mysqld/mysqld.sock")
        let bare = try MariaDBConfiguration(dsn: "user:pw@/db")
        #expect(bare.host == "127.0.0.1")
        #expect(bare.port == 3306)
        let verified = try MariaDBConfiguration(dsn: "u@tcp(localhost:3306)/d?tls-ca=/etc/ca.pem")
        #expect(verified.tls == .verifyIdentity)
    }

    @Test("malformed DSNs are invalidConfiguration, naming the fault, never the password")
    func malformed() {
        let bad = [
            "mysql://u:hunter2@host:notaport/db", "mysql://u:hunter2@host:70000/db", "postgres://u:hunter2@h/db",
            "u:hunter2@tcp(host:3306", "u:hunter2@udp(host:3306)/db", "u:hunter2@tcp(h:3306)/db?bogus=1",
            "u:hunter2@tcp(h:3306)/db?tls=maybe", "u:hunter2@tcp(h:3306)/db?timeout=-1s", "u:hunter2 @tcp(h)/db",
            "mysql://u:hunter2@[::1/db", "u:hunter2@tcp(h:3306)/db?timeout", "mysql://u:%zz@h/db", "no slash at all",
            // Found by the fuzzer: a duration past Int64 nanoseconds trapped instead of failing.
            "mysql://u:hunter2@h/db?timeout=333333333333333333333335s", "u:hunter2@tcp(h)/db?readTimeout=1e300h",
            "u:hunter2@tcp(h)/db?timeout=nan", "u:hunter2@tcp(h)/db?timeout=infs",
        ]
        for dsn in bad {
            do {
                _ = try MariaDBConfiguration(dsn: dsn)
                Issue.record("accepted \(dsn)")
            } catch {
                #expect(error.code == .invalidConfiguration, "\(dsn): \(error)")
                #expect(!error.description.contains("hunter2"), "\(error)")
            }
        }
    }
}

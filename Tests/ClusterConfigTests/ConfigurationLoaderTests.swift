import ClusterConfig
import ClusterSQL
import Foundation
import Memcached
import NIOClientSupport
import Redis
import SQLCore
import Testing

@Suite("config.toml parsing", .timeLimit(.minutes(2)))
struct ConfigurationLoaderTests {
    func parse(_ text: String) throws(ConfigurationError) -> ClusterSQLConfiguration {
        try ConfigurationLoader.parse(text, file: "test.toml", baseDirectory: "/srv/app")
    }

    func expectError(
        _ reason: ConfigurationError.Reason, keyPath: String?, _ text: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try parse(text)
            Issue.record("expected \(reason)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
            #expect(error.keyPath == keyPath, "\(error)", sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        }
    }

    @Test("the repository's config.toml has the local SQLite cluster as its default")
    func repositoryConfig() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try ConfigurationLoader.load(path: root.appendingPathComponent("config.toml").path)
        let local = try config.cluster(named: nil)
        #expect(local.name == "local")
        #expect(local.driver == "sqlite")
        #expect(local.nodes.count == 3)
        #expect(local.nodes.allSatisfy { $0.dsn.hasPrefix(config.dataDirectory + "/") })
    }

    @Test("a full file: clusters sorted, SQLite paths under data_dir, other DSNs untouched")
    func fullFile() throws {
        let config = try parse(
            """
            data_dir = "var/db"
            [clusters.local]
            driver = "sqlite"
            [[clusters.local.nodes]]
            name = "a"
            dsn = "a.sqlite?busy_timeout=100"
            [[clusters.local.nodes]]
            name = "mem"
            dsn = ":memory:"
            [[clusters.local.nodes]]
            name = "abs"
            dsn = "sqlite:/tmp/x.db"
            [clusters.galera]
            driver = "mariadb"
            [[clusters.galera.nodes]]
            name = "g1"
            dsn = "app:secret@tcp(127.0.0.1:3306)/app"
            """)
        #expect(config.clusters.map(\.name) == ["galera", "local"])
        #expect(config.defaultCluster == "local")
        #expect(config.dataDirectory == "/srv/app/var/db")
        let local = try config.cluster(named: "local")
        #expect(local.nodes.map(\.dsn) == ["/srv/app/var/db/a.sqlite?busy_timeout=100", ":memory:", "sqlite:/tmp/x.db"])
        let galera = try config.cluster(named: "galera")
        #expect(galera.nodes[0].dsn == "app:secret@tcp(127.0.0.1:3306)/app")
        #expect(!galera.nodes[0].description.contains("secret"))
    }

    @Test("session_sql per cluster and node; min_idle, max_open and leak_threshold_ms make the Database settings")
    func sessionAndPool() throws {
        let config = try parse(
            """
            [clusters.pg]
            driver = "postgres"
            session_sql = ["SET TIME ZONE 'UTC'", "SET search_path TO app"]
            min_idle = 2
            max_open = 8
            leak_threshold_ms = 1500
            [[clusters.pg.nodes]]
            name = "a"
            dsn = "host=a"
            session_sql = ["SET statement_timeout = '5s'"]
            [[clusters.pg.nodes]]
            name = "b"
            dsn = "host=b"
            """)
        let pg = try config.cluster(named: "pg")
        #expect(pg.sessionSQL == ["SET TIME ZONE 'UTC'", "SET search_path TO app"])
        #expect(pg.nodes.map(\.sessionSQL) == [["SET statement_timeout = '5s'"], []])
        #expect(pg.databaseConfiguration.name == "pg")
        #expect(pg.databaseConfiguration.minIdle == 2)
        #expect(pg.databaseConfiguration.maxOpen == 8)
        #expect(pg.databaseConfiguration.leakThreshold == .milliseconds(1500))
        let plain = try parse("[clusters.x]\ndriver = \"sqlite\"\n[[clusters.x.nodes]]\nname = \"a\"\ndsn = \":memory:\"")
        let x = try plain.cluster(named: "x")
        #expect(x.sessionSQL.isEmpty && x.databaseConfiguration.minIdle == 0 && x.databaseConfiguration.leakThreshold == nil)
        let node = "\n[[clusters.x.nodes]]\nname = \"a\"\ndsn = \":memory:\""
        expectError(.invalidValue, keyPath: "clusters.x.session_sql", "[clusters.x]\ndriver = \"sqlite\"\nsession_sql = [\" \"]" + node)
        expectError(.wrongType, keyPath: "clusters.x.session_sql", "[clusters.x]\ndriver = \"sqlite\"\nsession_sql = \"SET x\"" + node)
        expectError(.invalidValue, keyPath: "clusters.x.min_idle", "[clusters.x]\ndriver = \"sqlite\"\nmin_idle = -1" + node)
        expectError(.invalidValue, keyPath: "clusters.x.min_idle", "[clusters.x]\ndriver = \"sqlite\"\nmin_idle = 5\nmax_open = 2" + node)
        expectError(
            .invalidValue, keyPath: "clusters.x.leak_threshold_ms", "[clusters.x]\ndriver = \"sqlite\"\nleak_threshold_ms = 0" + node)
    }

    @Test("the path comes from --config, else CLUSTERSQL_CONFIG, else ./config.toml")
    func pathResolution() {
        #expect(ConfigurationLoader.resolvePath(explicit: "a.toml", environment: ["CLUSTERSQL_CONFIG": "b.toml"]) == "a.toml")
        #expect(ConfigurationLoader.resolvePath(explicit: nil, environment: ["CLUSTERSQL_CONFIG": "b.toml"]) == "b.toml")
        #expect(ConfigurationLoader.resolvePath(explicit: nil, environment: [:]) == "config.toml")
    }

    @Test("a syntax error names the line and column")
    func syntax() {
        do {
            _ = try parse("default_cluster = \"x\"\n[clusters.local\n")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.reason == .syntax)
            #expect(error.line == 2)
            #expect(error.description.hasPrefix("test.toml:2:"))
        }
    }

    @Test("unknown keys are refused wherever they are")
    func unknownKeys() {
        expectError(
            .unknownKey, keyPath: "colour",
            """
            colour = "blue"
            [clusters.l]
            driver = "sqlite"
            nodes = [{ name = "a", dsn = "a.db" }]
            """)
        expectError(
            .unknownKey, keyPath: "clusters.l.strategi",
            """
            [clusters.l]
            driver = "sqlite"
            strategi = "latency"
            nodes = [{ name = "a", dsn = "a.db" }]
            """)
        expectError(
            .unknownKey, keyPath: "clusters.l.nodes[1].pasword",
            """
            [clusters.l]
            driver = "sqlite"
            nodes = [{ name = "a", dsn = "a.db" }, { name = "b", dsn = "b.db", pasword = "x" }]
            """)
    }

    @Test("missing fields are named")
    func missing() {
        expectError(.missingKey, keyPath: "clusters", "data_dir = \"x\"")
        expectError(.missingKey, keyPath: "clusters.l.driver", "[clusters.l]\nnodes = [{ name = \"a\", dsn = \"a.db\" }]")
        expectError(.missingKey, keyPath: "clusters.l.nodes", "[clusters.l]\ndriver = \"sqlite\"")
        expectError(.missingKey, keyPath: "clusters.l.nodes[0].dsn", "[clusters.l]\ndriver = \"sqlite\"\nnodes = [{ name = \"a\" }]")
    }

    @Test("wrong types are named with what was found")
    func wrongTypes() {
        expectError(.wrongType, keyPath: "clusters", "clusters = 3")
        expectError(.wrongType, keyPath: "clusters.l.driver", "[clusters.l]\ndriver = 1\nnodes = []")
        expectError(.wrongType, keyPath: "clusters.l.nodes", "[clusters.l]\ndriver = \"sqlite\"\nnodes = \"a\"")
        expectError(.wrongType, keyPath: "clusters.l.nodes[0]", "[clusters.l]\ndriver = \"sqlite\"\nnodes = [1]")
        expectError(
            .wrongType, keyPath: "clusters.l.nodes[0].name", "[clusters.l]\ndriver = \"sqlite\"\nnodes = [{ name = true, dsn = \"a\" }]")
        expectError(.wrongType, keyPath: "clusters.l", "[clusters]\nl = 5")
    }

    @Test("invalid values: unknown driver, duplicate or empty node names, no nodes, bad default")
    func invalidValues() {
        expectError(
            .invalidValue, keyPath: "clusters.l.driver", "[clusters.l]\ndriver = \"oracle\"\nnodes = [{ name = \"a\", dsn = \"a\" }]")
        expectError(
            .invalidValue, keyPath: "clusters.l.nodes[1].name",
            """
            [clusters.l]
            driver = "sqlite"
            nodes = [{ name = "a", dsn = "a.db" }, { name = "a", dsn = "b.db" }]
            """)
        expectError(
            .invalidValue, keyPath: "clusters.l.nodes[0].name", "[clusters.l]\ndriver = \"sqlite\"\nnodes = [{ name = \"\", dsn = \"a\" }]")
        expectError(.invalidValue, keyPath: "clusters.l.nodes", "[clusters.l]\ndriver = \"sqlite\"\nnodes = []")
        expectError(.invalidValue, keyPath: "clusters", "[clusters]")
        expectError(
            .invalidValue, keyPath: "default_cluster",
            """
            default_cluster = "prod"
            [clusters.l]
            driver = "sqlite"
            nodes = [{ name = "a", dsn = "a.db" }]
            """)
    }

    @Test("an unknown cluster lists the ones there are; a missing file is .unreadable")
    func lookupAndFiles() throws {
        let config = try parse("[clusters.l]\ndriver = \"sqlite\"\nnodes = [{ name = \"a\", dsn = \"a.db\" }]")
        do {
            _ = try config.cluster(named: "nope")
            Issue.record("expected unknownCluster")
        } catch {
            #expect(error.reason == .unknownCluster)
            #expect(error.description.contains("clusters: l"))
        }
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: "/nonexistent/config.toml") }
    }

    @Test("errors never echo values, so passwords in DSNs cannot leak")
    func noValuesInErrors() {
        do {
            _ = try parse("[clusters.l]\ndriver = \"hunter2\"\nnodes = [{ name = \"a\", dsn = \"a\" }]")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test("strategy, target, connection lifetime and replication limits: defaults, every name, and a refusal that lists the names")
    func clusterSettings() throws {
        let plain = try parse("[clusters.l]\ndriver = \"sqlite\"\nnodes = [{ name = \"a\", dsn = \"a.db\" }]").clusters[0]
        #expect(plain.strategy == .latency && plain.target == .any && plain.connectionLifetime == .seconds(60))
        #expect(plain.replicationLimits == .unlimited)
        let set = try parse(
            """
            [clusters.pg]
            driver = "postgres"
            strategy = "round-robin"
            target = "prefer-standby"
            connection_lifetime = 0
            max_replication_lag_ms = 1500
            max_transactions_behind = 0
            nodes = [{ name = "a", dsn = "host=127.0.0.1" }]
            """
        ).clusters[0]
        #expect(set.strategy == .roundRobin && set.target == .preferStandby && set.connectionLifetime == nil)
        let driver = set.driverConfiguration
        #expect(
            driver.name == "pg" && driver.strategy == .roundRobin && driver.target == .preferStandby && driver.connectionLifetime == nil)
        #expect(driver.replicationLimits == ReplicationLimits(maxLag: .milliseconds(1500), maxTransactionsBehind: 0))
        func cluster(_ line: String) -> String { "[clusters.c]\ndriver = \"sqlite\"\n\(line)\nnodes = [{ name = \"a\", dsn = \"a.db\" }]" }
        expectError(.invalidValue, keyPath: "clusters.c.strategy", cluster("strategy = \"fastest\""))
        expectError(.invalidValue, keyPath: "clusters.c.target", cluster("target = \"master\""))
        expectError(.wrongType, keyPath: "clusters.c.target", cluster("target = 1"))
        expectError(.wrongType, keyPath: "clusters.c.connection_lifetime", cluster("connection_lifetime = \"1m\""))
        expectError(.invalidValue, keyPath: "clusters.c.connection_lifetime", cluster("connection_lifetime = -1"))
        expectError(.invalidValue, keyPath: "clusters.c.max_replication_lag_ms", cluster("max_replication_lag_ms = 0"))
        expectError(.wrongType, keyPath: "clusters.c.max_replication_lag_ms", cluster("max_replication_lag_ms = \"2s\""))
        expectError(.invalidValue, keyPath: "clusters.c.max_transactions_behind", cluster("max_transactions_behind = -1"))
        do {
            _ = try parse(cluster("target = \"master\""))
        } catch {
            #expect(error.description.contains("read-write") && error.description.contains("prefer-standby"))
        }
    }

    @Test("the repository's config.toml names galera, postgres and the compose clusters on the ports docker-compose.yml publishes")
    func composeClustersMatchTheComposeFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try ConfigurationLoader.load(path: root.appendingPathComponent("config.toml").path)
        #expect(try config.cluster(named: "galera").nodes.count == 3)
        #expect(try config.cluster(named: "postgres").nodes.count == 2)
        let compose = try String(contentsOf: root.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        for name in ["compose", "compose-postgres"] {
            for node in try config.cluster(named: name).nodes {
                let port = try #require(node.dsn.split(separator: "@").last?.split(separator: "/").first?.split(separator: ":").last)
                #expect(
                    compose.contains("\"127.0.0.1:\(port):"), "\(name) node \(node.name): port \(port) not published by docker-compose.yml")
            }
        }
        guard case .sentinel(let sentinel) = try config.service(named: "compose-cache").kind else {
            Issue.record("compose-cache is a sentinel service")
            return
        }
        for address in sentinel.sentinels {
            let port = try #require(address.split(separator: ":").last)
            #expect(
                compose.contains("\"127.0.0.1:\(port):\(port)\""), "sentinel port \(port) not published as itself by docker-compose.yml")
            #expect(compose.contains("SENTINEL_PORT: \"\(port)\""))
        }
    }

    @Test("services: sentinel and redis kinds read strictly; errors name the key and never echo a password")
    func services() throws {
        let text = """
            [clusters.a]
            driver = "sqlite"
            [[clusters.a.nodes]]
            name = "n"
            dsn = "n.sqlite"
            [services.cache]
            kind = "sentinel"
            sentinels = ["10.0.0.1:26379", "10.0.0.2"]
            master_name = "mymaster"
            sentinel_password = "s-secret"
            password = "d-secret"
            replica_fallback = "fail"
            [services.plain]
            kind = "redis"
            url = "redis://:p-secret@127.0.0.1:6380/2"
            """
        let config = try ConfigurationLoader.parse(text, file: "c.toml", baseDirectory: "/tmp")
        guard case .sentinel(let sentinel) = try config.service(named: "cache").kind else {
            Issue.record("a sentinel service")
            return
        }
        #expect(sentinel.sentinels == ["10.0.0.1:26379", "10.0.0.2"])
        #expect(sentinel.masterNames == ["mymaster"])
        #expect(sentinel.sentinelPassword == "s-secret" && sentinel.dataNodes.password == "d-secret")
        #expect(sentinel.replicaFallback == .fail)
        #expect(!"\(try config.service(named: "cache"))".contains("secret"))
        guard case .redis(let plain) = try config.service(named: "plain").kind else {
            Issue.record("a redis service")
            return
        }
        #expect(plain.port == 6380 && plain.database == 2)
        #expect(!"\(try config.service(named: "plain"))".contains("p-secret"))
        #expect(throws: ConfigurationError.self) { try config.service(named: "nope") }
        let memcached = try ConfigurationLoader.parse(
            """
            [clusters.a]
            driver = "sqlite"
            [[clusters.a.nodes]]
            name = "n"
            dsn = "n.sqlite"
            [services.pages]
            kind = "memcached"
            servers = ["10.0.0.1", "10.0.0.2:11300"]
            weights = [1, 3]
            timeout_ms = 250
            failure_threshold = 4
            failure_window = 2
            redistribute = true
            flush_on_heal = false
            shared_connections = 0
            """, file: "c.toml", baseDirectory: "/tmp")
        guard case .memcached(let client, let healing) = try memcached.service(named: "pages").kind else {
            Issue.record("a memcached service")
            return
        }
        #expect(client.servers.map(\.description) == ["10.0.0.1:11211", "10.0.0.2:11300"])
        #expect(client.servers.map(\.weight) == [1, 3])
        #expect(client.servers[0].readTimeout == .milliseconds(250))
        #expect(healing.failureThreshold == 4 && healing.failureWindow == .seconds(2) && healing.redistributeWhileDown)
        #expect(!healing.flushOnHeal)
        #expect(client.sharedConnectionsPerServer == nil, "0: a pooled connection per call")

        let base = "[clusters.a]\ndriver = \"sqlite\"\n[[clusters.a.nodes]]\nname = \"n\"\ndsn = \"n.sqlite\"\n"
        func failure(_ service: String) -> ConfigurationError? {
            do {
                _ = try ConfigurationLoader.parse(base + service, file: "c.toml", baseDirectory: "/tmp")
                return nil
            } catch { return error }
        }
        let badKind = failure("[services.x]\nkind = \"memcache\"\n")
        #expect(badKind?.keyPath == "services.x.kind")
        let noSentinels = failure("[services.x]\nkind = \"sentinel\"\nsentinels = []\nmaster_name = \"m\"\n")
        #expect(noSentinels?.keyPath == "services.x.sentinels")
        let badAddress = failure("[services.x]\nkind = \"sentinel\"\nsentinels = [\"h:pw-secret\"]\nmaster_name = \"m\"\n")
        #expect(badAddress?.keyPath == "services.x.sentinels[0]")
        #expect(badAddress.map { !"\($0)".contains("pw-secret") } == true)
        let badURL = failure("[services.x]\nkind = \"redis\"\nurl = \"redis://:u-secret@host:notaport\"\n")
        #expect(badURL?.keyPath == "services.x.url")
        #expect(badURL.map { !"\($0)".contains("u-secret") } == true)
        let unknownKey = failure("[services.x]\nkind = \"redis\"\nurl = \"redis://h\"\nextra = 1\n")
        #expect(unknownKey?.keyPath == "services.x.extra")
        let weights = failure("[services.x]\nkind = \"memcached\"\nservers = [\"a:1\", \"b:2\"]\nweights = [1]\n")
        #expect(weights?.keyPath == "services.x.weights")
        let badServer = failure("[services.x]\nkind = \"memcached\"\nservers = [\"a:notaport\"]\n")
        #expect(badServer?.keyPath == "services.x.servers[0]")
        let badType = failure("[services.x]\nkind = \"memcached\"\nservers = [\"a\"]\nredistribute = \"yes\"\n")
        #expect(badType?.keyPath == "services.x.redistribute" && badType?.reason == .wrongType)
        let badShared = failure("[services.x]\nkind = \"memcached\"\nservers = [\"a\"]\nshared_connections = -1\n")
        #expect(badShared?.keyPath == "services.x.shared_connections")
    }

    @Test("TLS keys on every kind of service: files relative to the config's folder, rediss:// URLs, checks with the key named")
    func serviceTLS() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "clustersql-tls-config-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["ca.crt", "client.crt", "client.key"] {
            try "not read here".write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let base = "[clusters.a]\ndriver = \"sqlite\"\n[[clusters.a.nodes]]\nname = \"n\"\ndsn = \"n.sqlite\"\n"
        let text =
            base + """
                [services.cache]
                kind = "sentinel"
                sentinels = ["10.0.0.1:26379"]
                master_name = "mymaster"
                tls_ca_file = "ca.crt"
                tls_cert_file = "client.crt"
                tls_key_file = "\(folder.path)/client.key"
                [services.secure]
                kind = "redis"
                url = "rediss://10.0.0.2:6380"
                [services.named]
                kind = "redis"
                url = "redis://10.0.0.2:6380"
                tls_verify = "certificate"
                tls_server_name = "redis.internal"
                [services.pages]
                kind = "memcached"
                servers = ["10.0.0.1", "10.0.0.2"]
                tls = true
                """
        let config = try ConfigurationLoader.parse(text, file: "c.toml", baseDirectory: folder.path)
        guard case .sentinel(let sentinel) = try config.service(named: "cache").kind,
            case .redis(let secure) = try config.service(named: "secure").kind,
            case .redis(let named) = try config.service(named: "named").kind,
            case .memcached(let pages, _) = try config.service(named: "pages").kind
        else {
            Issue.record("the four services")
            return
        }
        let expected = ClientTLS(
            trustRootsFile: folder.appendingPathComponent("ca.crt").path, certificateFile: folder.appendingPathComponent("client.crt").path,
            privateKeyFile: folder.appendingPathComponent("client.key").path)
        #expect(sentinel.sentinelTLS == expected && sentinel.dataNodes.tls == expected)
        #expect(secure.tls == ClientTLS())
        #expect(named.tls == ClientTLS(verification: .certificateOnly, serverName: "redis.internal"))
        #expect(pages.servers.allSatisfy { $0.tls == ClientTLS() })
        #expect("\(try config.service(named: "pages"))".contains("TLS (full verification)"))

        func failure(_ service: String) -> ConfigurationError? {
            do {
                _ = try ConfigurationLoader.parse(base + service, file: "c.toml", baseDirectory: folder.path)
                return nil
            } catch { return error }
        }
        let missingFile = failure("[services.x]\nkind = \"memcached\"\nservers = [\"a\"]\ntls_ca_file = \"nope.crt\"\n")
        #expect(missingFile?.keyPath == "services.x.tls_ca_file")
        let keyless = failure("[services.x]\nkind = \"redis\"\nurl = \"redis://h\"\ntls_cert_file = \"client.crt\"\n")
        #expect(keyless?.keyPath == "services.x.tls_key_file" && keyless?.reason == .missingKey)
        let contradiction = failure("[services.x]\nkind = \"redis\"\nurl = \"redis://h\"\ntls = false\ntls_verify = \"none\"\n")
        #expect(contradiction?.keyPath == "services.x.tls")
        let badVerify = failure("[services.x]\nkind = \"redis\"\nurl = \"redis://h\"\ntls_verify = \"strict\"\n")
        #expect(badVerify?.keyPath == "services.x.tls_verify")
        let downgrade = failure("[services.x]\nkind = \"redis\"\nurl = \"rediss://h\"\ntls = false\n")
        #expect(downgrade?.keyPath == "services.x.tls", "tls = false under a rediss:// URL would send the password in the clear")
        let uncheckedRoots = failure(
            "[services.x]\nkind = \"redis\"\nurl = \"redis://h\"\ntls_verify = \"none\"\ntls_ca_file = \"ca.crt\"\n")
        #expect(uncheckedRoots?.keyPath == "services.x.tls_verify")
        for name in ["10.0.0.5", ""] {
            let badName = failure("[services.x]\nkind = \"redis\"\nurl = \"redis://h\"\ntls_server_name = \"\(name)\"\n")
            #expect(badName?.keyPath == "services.x.tls_server_name", "\(name)")
        }
    }

    @Test("a cluster's or a node's TLS keys go into each node's DSN in its backend's words; contradictions are refused")
    func clusterTLS() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "clustersql-sql-tls-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "not read here".write(to: folder.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
        let text = """
            [clusters.pg]
            driver = "postgres"
            tls = true
            tls_ca_file = "ca.pem"
            [[clusters.pg.nodes]]
            name = "a"
            dsn = "host=10.0.0.1 dbname=app"
            [[clusters.pg.nodes]]
            name = "b"
            dsn = "postgres://app@10.0.0.2/app"
            [[clusters.pg.nodes]]
            name = "c"
            dsn = "host=10.0.0.3"
            tls_verify = "none"
            [clusters.db]
            driver = "mariadb"
            tls = true
            [[clusters.db.nodes]]
            name = "a"
            dsn = "mysql://app@10.0.0.1/app"
            [[clusters.db.nodes]]
            name = "b"
            dsn = "app@tcp(10.0.0.2:3306)/app?parseTime=true"
            tls = false
            """
        let config = try ConfigurationLoader.parse(text, file: "c.toml", baseDirectory: folder.path)
        let ca = folder.appendingPathComponent("ca.pem").path
        let pg = try config.cluster(named: "pg").nodes.map(\.dsn)
        #expect(pg[0] == "host=10.0.0.1 dbname=app sslmode=verify-full sslrootcert=\(ca)")
        #expect(pg[1] == "postgres://app@10.0.0.2/app?sslmode=verify-full&sslrootcert=\(ca)")
        #expect(pg[2] == "host=10.0.0.3 sslmode=require", "the node's keys replace the cluster's")
        let db = try config.cluster(named: "db").nodes.map(\.dsn)
        #expect(db == ["mysql://app@10.0.0.1/app?tls=verify-identity", "app@tcp(10.0.0.2:3306)/app?parseTime=true&tls=false"])

        let base = "[[clusters.x.nodes]]\nname = \"n\"\n"
        expectError(
            .invalidValue, keyPath: "clusters.x.tls",
            "[clusters.x]\ndriver = \"postgres\"\ntls = true\n" + base + "dsn = \"host=h sslmode=disable\"\n")
        expectError(
            .invalidValue, keyPath: "clusters.x.tls", "[clusters.x]\ndriver = \"sqlite\"\ntls = true\n" + base + "dsn = \"n.sqlite\"\n")
        expectError(
            .invalidValue, keyPath: "clusters.x.tls",
            "[clusters.x]\ndriver = \"mariadb\"\ntls_verify = \"certificate\"\n" + base + "dsn = \"mysql://u@h/d\"\n")
        expectError(
            .invalidValue, keyPath: "clusters.x.nodes[0].tls",
            "[clusters.x]\ndriver = \"mariadb\"\n" + base + "dsn = \"mysql://u@h/d?tls=true\"\ntls = false\n")
        expectError(
            .invalidValue, keyPath: "clusters.x.tls_ca_file",
            "[clusters.x]\ndriver = \"postgres\"\ntls_ca_file = \"/nonexistent/ca.pem\"\n" + base + "dsn = \"host=h\"\n")
    }

    @Test("${NAME} in a value reads the environment; $${ is a literal; an unset variable names key and variable, never a value")
    func environmentVariables() throws {
        let text = """
            [clusters.app]
            driver = "postgres"
            [[clusters.app.nodes]]
            name = "primary"
            dsn = "postgres://app:${APP_DB_PASSWORD}@10.0.0.5:5432/app?application_name=cost$${x}"
            [services.cache]
            kind = "sentinel"
            sentinels = ["${SENTINEL_HOST}:26379"]
            master_name = "mymaster"
            password = "${REDIS_PASSWORD}"
            """
        let environment = ["APP_DB_PASSWORD": "s3cr et'@", "SENTINEL_HOST": "10.0.0.9", "REDIS_PASSWORD": "r3dis"]
        let config = try ConfigurationLoader.parse(text, file: "c.toml", baseDirectory: "/tmp", environment: environment)
        #expect(try config.cluster(named: "app").nodes[0].dsn == "postgres://app:s3cr et'@@10.0.0.5:5432/app?application_name=cost${x}")
        #expect(try config.cluster(named: "app").nodes[0].description.contains("s3cr") == false)
        let service = try #require(config.services.first { $0.name == "cache" })
        #expect("\(service)".contains("10.0.0.9:26379"))
        #expect(!"\(service)".contains("r3dis"))
        do {
            _ = try ConfigurationLoader.parse(
                text, file: "c.toml", baseDirectory: "/tmp", environment: ["SENTINEL_HOST": "h", "REDIS_PASSWORD": "x"])
            Issue.record("expected an error for the unset variable")
        } catch {
            #expect(error.reason == .unsetVariable)
            #expect(error.keyPath == "clusters.app.nodes[0].dsn")
            #expect(
                error.description == "c.toml: clusters.app.nodes[0].dsn: names the environment variable APP_DB_PASSWORD, which is not set")
        }
        for bad in ["${", "${1X}", "${A-B}", "pre${NAME"] {
            do {
                _ = try ConfigurationLoader.parse(
                    "[clusters.c]\ndriver = \"sqlite\"\n[[clusters.c.nodes]]\nname = \"n\"\ndsn = \"\(bad)secret\"\n",
                    file: "c.toml", baseDirectory: "/tmp", environment: [:])
                Issue.record("expected an error for \(bad)")
            } catch {
                #expect(error.reason == .invalidValue && !error.description.contains("secret"), "\(error)")
            }
        }
    }

    @Test("the inputs that crashed the fuzzer are typed errors now (Fuzz/regressions)")
    func fuzzRegressions() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/regressions")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("config-") }
        #expect(!files.isEmpty)
        for name in files {
            let text = String(decoding: try Data(contentsOf: folder.appendingPathComponent(name)), as: UTF8.self)
            #expect(throws: ConfigurationError.self, "\(name)") {
                try ConfigurationLoader.parse(text, file: name, baseDirectory: "/tmp", environment: ["FUZZ": "x"])
            }
        }
    }

    @Test(
        "table names and a } in an array, which would crash the TOML parser, are syntax errors with their place; valid files with [ in values still load"
    )
    func tableNamePrecheck() throws {
        for (text, line) in [
            ("[é]\n", 1), ("a = 1\n[[!]]\n", 2), ("[ .a]\n", 1), ("x = 1\n\n  [{]\n", 3),
            ("a = [}\n", 1), ("a = [\n  1,\n  }]\n", 3), ("a = [{ b = [1] }, [}]]\n", 1),
        ] {
            do {
                _ = try ConfigurationLoader.parse(text, file: "c.toml", baseDirectory: "/tmp", environment: [:])
                Issue.record("expected an error for \(text)")
            } catch {
                #expect(error.reason == .syntax && error.line == line, "\(error)")
            }
        }
        let valid = """
            [clusters.c]
            driver = "sqlite"
            [[clusters.c.nodes]]
            name = "n"  # a comment with [é]
            dsn = "x.sqlite"
            [services."m"]
            kind = "memcached"
            servers = [
              "a:1",
            ]
            """
        #expect(try ConfigurationLoader.parse(valid, file: "c.toml", baseDirectory: "/tmp", environment: [:]).clusters.count == 1)
    }

    @Test("a file that is not UTF-8, a duplicate cluster and a port out of range are one-line errors")
    func malformedFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("config.toml")
        try Data([0x5B, 0x63, 0x5D, 0x0A, 0xFF, 0xFE, 0x3D, 0x31]).write(to: file)
        do {
            _ = try ConfigurationLoader.load(path: file.path, environment: [:])
            Issue.record("expected an error for non-UTF-8 bytes")
        } catch {
            #expect(error.reason == .syntax && error.description.contains("not UTF-8"), "\(error)")
        }
        expectError(.syntax, keyPath: nil, "[clusters.a]\ndriver = \"sqlite\"\n[clusters.a]\ndriver = \"sqlite\"\n")
        do {
            _ = try parse(
                "[services.m]\nkind = \"memcached\"\nservers = [\"127.0.0.1:70000\"]\n[clusters.c]\ndriver = \"sqlite\"\n[[clusters.c.nodes]]\nname = \"n\"\ndsn = \"x.sqlite\"\n"
            )
            Issue.record("expected an error for port 70000")
        } catch {
            #expect(error.keyPath == "services.m.servers[0]", "\(error)")
        }
    }
}

import ClusterSQL
import Foundation
import SQLCore
import TOMLKit

/// Reads `config.toml` into a ``ClusterSQLConfiguration``, strictly: an unknown
/// key, a missing field or a wrong type is a one-line ``ConfigurationError``.
public enum ConfigurationLoader {
    /// The environment variable that names the configuration file.
    package static let environmentVariable = "CLUSTERSQL_CONFIG"
    /// The drivers a cluster may name.
    static let knownDrivers = ["sqlite", "postgres", "mariadb"]

    /// The file to read: `explicit` (a `--config` option), else `$CLUSTERSQL_CONFIG`, else `./config.toml`.
    package static func resolvePath(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty { return fromEnvironment }
        return "config.toml"
    }

    /// Reads and validates the file at `path`; `${NAME}` in a string value is
    /// replaced by the environment variable `NAME` (see ``parse(_:file:baseDirectory:environment:)``).
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> ClusterSQLConfiguration {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw ConfigurationError(.unreadable, file: path, message: "the configuration file \(reason)")
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw ConfigurationError(.syntax, file: path, message: "the configuration file is not UTF-8 text, as TOML must be")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text, file: path, baseDirectory: folder, environment: environment)
    }

    /// Validates TOML text; relative `data_dir` paths are taken from `baseDirectory`.
    ///
    /// Secrets may stay out of the file: in any string value, `${NAME}` is
    /// replaced by the variable `NAME` of `environment` (`dsn =
    /// "postgres://app:${PG_PASSWORD}@db/app"`, `password = "${REDIS_PASSWORD}"`);
    /// `$${` writes a literal `${`. A variable that is not set is a one-line
    /// error naming the key and the variable, never a value.
    public static func parse(
        _ text: String, file: String, baseDirectory: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> ClusterSQLConfiguration {
        if let problem = TOMLPrecheck.problem(in: text) {  // inputs that would crash TOMLKit's parser
            throw ConfigurationError(.syntax, file: file, line: problem.line, column: problem.column, message: problem.message)
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                .syntax, file: file, line: error.source.begin.line, column: error.source.begin.column,
                message: error.description)
        } catch {
            throw ConfigurationError(.syntax, file: file, message: "the file is not valid TOML")
        }
        var reader = TableReader(table: root, path: "", file: file, environment: environment)
        let defaultCluster = try reader.string("default_cluster", required: false)
        let dataDir = try reader.string("data_dir", required: false) ?? ".clustersql-data"
        let clustersTable = try reader.table("clusters")!
        let servicesTable = try reader.table("services", required: false)
        try reader.finish()

        let dataDirectory = absolute(dataDir, base: baseDirectory)
        var clusters: [ClusterConfiguration] = []
        for name in clustersTable.table.keys.sorted() {
            clusters.append(try cluster(named: name, in: clustersTable, dataDirectory: dataDirectory, baseDirectory: baseDirectory))
        }
        guard !clusters.isEmpty else {
            throw ConfigurationError(.invalidValue, file: file, keyPath: "clusters", message: "defines no cluster")
        }
        let chosen = defaultCluster ?? (clusters.contains { $0.name == "local" } ? "local" : clusters[0].name)
        guard clusters.contains(where: { $0.name == chosen }) else {
            throw ConfigurationError(
                .invalidValue, file: file, keyPath: "default_cluster", message: "names a cluster that is not defined")
        }
        var services: [ServiceConfiguration] = []
        if let servicesTable {
            for name in servicesTable.table.keys.sorted() {
                var serviceReader = try servicesTable.subtable(name)
                services.append(try ServiceReader.service(named: name, &serviceReader, baseDirectory: baseDirectory))
            }
        }
        return ClusterSQLConfiguration(
            file: file, defaultCluster: chosen, dataDirectory: dataDirectory, clusters: clusters, services: services)
    }

    private static func cluster(
        named name: String, in clusters: TableReader, dataDirectory: String, baseDirectory: String
    ) throws(ConfigurationError) -> ClusterConfiguration {
        var reader = try clusters.subtable(name)
        let driver = try reader.string("driver")!
        guard knownDrivers.contains(driver) else {
            throw reader.error(.invalidValue, key: "driver", "must be one of \(knownDrivers.joined(separator: ", "))")
        }
        let strategy = try reader.choice("strategy", default: BalancingStrategy.latency)
        let target = try reader.choice("target", default: TargetRole.any)
        let lifetime = try reader.integer("connection_lifetime", required: false) ?? 60
        guard lifetime >= 0 else {
            throw reader.error(.invalidValue, key: "connection_lifetime", "must be 0 (forever) or a number of seconds")
        }
        var limits = ReplicationLimits.unlimited
        if let lag = try reader.integer("max_replication_lag_ms", required: false) {
            guard lag >= 1 else { throw reader.error(.invalidValue, key: "max_replication_lag_ms", "must be 1 or more") }
            limits.maxLag = .milliseconds(lag)
        }
        if let behind = try reader.integer("max_transactions_behind", required: false) {
            guard behind >= 0 else { throw reader.error(.invalidValue, key: "max_transactions_behind", "must be 0 or more") }
            limits.maxTransactionsBehind = behind
        }
        let clusterSessionSQL = try sessionSQL(&reader)
        let pool = try databaseConfiguration(named: name, &reader)
        let clusterTLS = try SQLTLS.read(&reader, baseDirectory: baseDirectory)
        var nodes: [NodeConfiguration] = []
        for var nodeReader in try reader.arrayOfTables("nodes") {
            let nodeName = try nodeReader.string("name")!
            var dsn = try nodeReader.string("dsn")!
            let nodeTLS = try SQLTLS.read(&nodeReader, baseDirectory: baseDirectory)
            let nodeSessionSQL = try sessionSQL(&nodeReader)
            try nodeReader.finish()
            if let tls = nodeTLS ?? clusterTLS {
                switch tls.apply(to: dsn, driver: driver) {
                case .success(let withTLS): dsn = withTLS
                case .failure(let problem): throw (nodeTLS != nil ? nodeReader : reader).error(.invalidValue, key: "tls", problem.reason)
                }
            }
            guard !nodeName.isEmpty else { throw nodeReader.error(.invalidValue, key: "name", "must not be empty") }
            guard !dsn.isEmpty else { throw nodeReader.error(.invalidValue, key: "dsn", "must not be empty") }
            guard !nodes.contains(where: { $0.name == nodeName }) else {
                throw nodeReader.error(.invalidValue, key: "name", "repeats the name of another node in this cluster")
            }
            if driver == "sqlite" { dsn = sqliteDSN(dsn, dataDirectory: dataDirectory) }
            nodes.append(NodeConfiguration(name: nodeName, dsn: dsn, sessionSQL: nodeSessionSQL))
        }
        try reader.finish()
        guard !nodes.isEmpty else { throw reader.error(.invalidValue, key: "nodes", "lists no node") }
        return ClusterConfiguration(
            name: name, driver: driver, nodes: nodes, strategy: strategy, target: target,
            connectionLifetime: lifetime == 0 ? nil : .seconds(lifetime), replicationLimits: limits, sessionSQL: clusterSessionSQL,
            databaseConfiguration: pool)
    }

    /// A `Database`'s pool settings: `min_idle`, `max_open`, `leak_threshold_ms`.
    private static func databaseConfiguration(
        named name: String, _ reader: inout TableReader
    ) throws(ConfigurationError) -> DatabaseConfiguration {
        var pool = DatabaseConfiguration(name: name)
        if let minIdle = try reader.integer("min_idle", required: false) {
            guard minIdle >= 0 else { throw reader.error(.invalidValue, key: "min_idle", "must be 0 or more") }
            pool.minIdle = minIdle
        }
        if let maxOpen = try reader.integer("max_open", required: false) {
            guard maxOpen >= 1 else { throw reader.error(.invalidValue, key: "max_open", "must be 1 or more") }
            pool.maxOpen = maxOpen
        }
        if let leak = try reader.integer("leak_threshold_ms", required: false) {
            guard leak >= 1 else { throw reader.error(.invalidValue, key: "leak_threshold_ms", "must be 1 or more") }
            pool.leakThreshold = .milliseconds(leak)
        }
        if let maxOpen = pool.maxOpen, pool.minIdle > maxOpen {
            throw reader.error(.invalidValue, key: "min_idle", "must not exceed max_open (\(maxOpen))")
        }
        return pool
    }

    /// `session_sql`: statements, none of them empty.
    private static func sessionSQL(_ reader: inout TableReader) throws(ConfigurationError) -> [String] {
        let statements = try reader.strings("session_sql", required: false) ?? []
        guard statements.allSatisfy({ !$0.allSatisfy(\.isWhitespace) }) else {
            throw reader.error(.invalidValue, key: "session_sql", "holds an empty statement")
        }
        return statements
    }

    /// Relative SQLite paths live under the data folder; `:memory:`, `file:` URIs and absolute paths stay as they are.
    static func sqliteDSN(_ dsn: String, dataDirectory: String) -> String {
        var body = dsn
        var prefix = ""
        for scheme in ["sqlite://", "sqlite:"] where body.hasPrefix(scheme) {
            prefix = scheme
            body.removeFirst(scheme.count)
            break
        }
        if body.hasPrefix("/") || body.hasPrefix(":memory:") || body.hasPrefix("file:") { return dsn }
        return prefix + dataDirectory + "/" + body
    }

    static func absolute(_ path: String, base: String) -> String {
        if path.hasPrefix("/") { return path }
        let baseURL = URL(fileURLWithPath: base.isEmpty ? FileManager.default.currentDirectoryPath : base, isDirectory: true)
        return URL(fileURLWithPath: path, relativeTo: baseURL).standardizedFileURL.path
    }
}

/// Reads one TOML table against a schema, remembering which keys were used.
struct TableReader {
    let table: TOMLTable
    let path: String
    let file: String
    /// Where `${NAME}` references in string values are looked up.
    let environment: [String: String]
    private var used: Set<String> = []

    init(table: TOMLTable, path: String, file: String, environment: [String: String]) {
        self.table = table
        self.path = path
        self.file = file
        self.environment = environment
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ reason: ConfigurationError.Reason, key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(reason, file: file, keyPath: key.map(keyPath) ?? path, message: message)
    }

    /// Whether the table holds `key`.
    func has(_ key: String) -> Bool { table[key] != nil }

    /// A string value; `nil` only when absent and not required.
    mutating func string(_ key: String, required: Bool = true) throws(ConfigurationError) -> String? {
        used.insert(key)
        guard let value = table[key] else {
            if required { throw error(.missingKey, key: key, "is required") }
            return nil
        }
        guard let string = value.string else {
            throw error(.wrongType, key: key, "must be a string, not \(article(value.type))")
        }
        return try expandingVariables(string, key: key)
    }

    /// `text` with each `${NAME}` replaced by the environment's `NAME` and `$${` by `${`.
    func expandingVariables(_ text: String, key: String) throws(ConfigurationError) -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = text[...]
        while let start = rest.range(of: "${") {
            if start.lowerBound > rest.startIndex, rest[rest.index(before: start.lowerBound)] == "$" {
                result += rest[..<rest.index(before: start.lowerBound)] + "${"  // $${ is a literal ${
                rest = rest[start.upperBound...]
                continue
            }
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw error(.invalidValue, key: key, "has a ${ without its closing }")
            }
            let name = rest[start.upperBound..<end]
            guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
            else {
                throw error(.invalidValue, key: key, "has a ${…} whose name is not an environment variable name (letters, digits, _)")
            }
            guard let value = environment[String(name)] else {
                throw error(.unsetVariable, key: key, "names the environment variable \(name), which is not set")
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    /// An integer value; `nil` only when absent and not required.
    mutating func integer(_ key: String, required: Bool = true) throws(ConfigurationError) -> Int? {
        used.insert(key)
        guard let value = table[key] else {
            if required { throw error(.missingKey, key: key, "is required") }
            return nil
        }
        guard let integer = value.int else {
            throw error(.wrongType, key: key, "must be an integer, not \(article(value.type))")
        }
        return integer
    }

    /// An array of strings; `nil` only when absent and not required.
    mutating func strings(_ key: String, required: Bool = true) throws(ConfigurationError) -> [String]? {
        guard let strings = try array(key, required: required, of: "string", { $0.string }) else { return nil }
        var expanded: [String] = []
        for string in strings { expanded.append(try expandingVariables(string, key: key)) }
        return expanded
    }

    /// An array of integers; `nil` only when absent and not required.
    mutating func integers(_ key: String, required: Bool = true) throws(ConfigurationError) -> [Int]? {
        try array(key, required: required, of: "integer") { $0.int }
    }

    /// A boolean; `nil` only when absent and not required.
    mutating func bool(_ key: String, required: Bool = true) throws(ConfigurationError) -> Bool? {
        used.insert(key)
        guard let value = table[key] else {
            if required { throw error(.missingKey, key: key, "is required") }
            return nil
        }
        guard let bool = value.bool else { throw error(.wrongType, key: key, "must be a boolean, not \(article(value.type))") }
        return bool
    }

    private mutating func array<Element>(
        _ key: String, required: Bool, of kind: String, _ element: (any TOMLValueConvertible) -> Element?
    ) throws(ConfigurationError) -> [Element]? {
        used.insert(key)
        guard let value = table[key] else {
            if required { throw error(.missingKey, key: key, "is required") }
            return nil
        }
        guard let array = value.array else { throw error(.wrongType, key: key, "must be an array of \(kind)s, not \(article(value.type))") }
        var elements: [Element] = []
        for index in 0..<array.count {
            guard let item = element(array[index]) else {
                throw error(
                    .wrongType, key: "\(key)[\(index)]",
                    "must be \(kind == "integer" ? "an" : "a") \(kind), not \(article(array[index].type))")
            }
            elements.append(item)
        }
        return elements
    }

    /// One of an enumeration's names, or `fallback` when absent; any other string names the allowed ones.
    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: String, default fallback: Choice
    ) throws(ConfigurationError) -> Choice where Choice.RawValue == String {
        guard let name = try string(key, required: false) else { return fallback }
        guard let chosen = Choice(rawValue: name) else {
            let names = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(.invalidValue, key: key, "must be one of \(names)")
        }
        return chosen
    }

    /// A sub-table; `nil` only when absent and not required.
    mutating func table(_ key: String, required: Bool = true) throws(ConfigurationError) -> TableReader? {
        used.insert(key)
        guard let value = table[key] else {
            if required { throw error(.missingKey, key: key, "is required") }
            return nil
        }
        guard let sub = value.table else { throw error(.wrongType, key: key, "must be a table, not \(article(value.type))") }
        return TableReader(table: sub, path: keyPath(key), file: file, environment: environment)
    }

    /// A sub-table of this table, for tables whose keys are names (such as `clusters`).
    func subtable(_ key: String) throws(ConfigurationError) -> TableReader {
        guard let value = table[key], let sub = value.table else {
            throw error(.wrongType, key: key, "must be a table, not \(table[key].map { article($0.type) } ?? "a missing value")")
        }
        return TableReader(table: sub, path: keyPath(key), file: file, environment: environment)
    }

    /// An array of tables (`[[key]]`), required and non-empty.
    mutating func arrayOfTables(_ key: String) throws(ConfigurationError) -> [TableReader] {
        used.insert(key)
        guard let value = table[key] else { throw error(.missingKey, key: key, "is required") }
        guard let array = value.array else {
            throw error(.wrongType, key: key, "must be an array of tables ([[\(keyPath(key))]]), not \(article(value.type))")
        }
        var readers: [TableReader] = []
        for index in 0..<array.count {
            guard let sub = array[index].table else {
                throw error(.wrongType, key: "\(key)[\(index)]", "must be a table, not \(article(array[index].type))")
            }
            readers.append(TableReader(table: sub, path: "\(keyPath(key))[\(index)]", file: file, environment: environment))
        }
        return readers
    }

    /// Fails on the first key (in sorted order) that no reader method asked for.
    func finish() throws(ConfigurationError) {
        if let unknown = table.keys.sorted().first(where: { !used.contains($0) }) {
            throw error(.unknownKey, key: unknown, "is not a known key here")
        }
    }
}

/// "a string", "an integer": the TOML type's name with its article.
private func article(_ type: TOMLType) -> String {
    let name = type.description
    return ("aeiou".contains(name.first ?? "x") ? "an " : "a ") + name
}

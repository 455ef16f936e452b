import Foundation

/// A cluster's or a node's TLS keys in config.toml, written into each node's DSN in its
/// backend's own words, so that one setting reads the same for PostgreSQL and MariaDB:
///
/// | keys | PostgreSQL (libpq) | MariaDB (Connector/C) |
/// | --- | --- | --- |
/// | `tls = false` | `sslmode=disable` | `tls=false` |
/// | `tls = true` (verification `full`) | `sslmode=verify-full` | `tls=verify-identity` |
/// | `tls_verify = "certificate"` | `sslmode=verify-ca` | refused: Connector/C checks the name with the chain |
/// | `tls_verify = "none"` | `sslmode=require` | `tls=required` |
/// | `tls_ca_file = "ca.pem"` | `sslrootcert=…` | `tls-ca=…` |
///
/// A node's keys replace its cluster's. A DSN that already says how to use TLS, with keys
/// that say it too, is refused: one place decides. SQLite has no network: its clusters
/// take no TLS key.
struct SQLTLS: Equatable {
    /// How much of the server's certificate is checked.
    enum Verification: String, CaseIterable {
        case full, certificate, none
    }

    var enabled: Bool
    var verification: Verification
    var authorityFile: String?

    /// The TLS keys of `reader`'s table (`tls`, `tls_verify`, `tls_ca_file`), or `nil` when it has none.
    static func read(_ reader: inout TableReader, baseDirectory: String) throws(ConfigurationError) -> SQLTLS? {
        let enabled = try reader.bool("tls", required: false)
        let verifyGiven = reader.has("tls_verify")
        let verification = try reader.choice("tls_verify", default: Verification.full)
        var authorityFile: String?
        if let given = try reader.string("tls_ca_file", required: false) {
            let path = ConfigurationLoader.absolute(given, base: baseDirectory)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw reader.error(.invalidValue, key: "tls_ca_file", "names a file that cannot be read")
            }
            authorityFile = path
        }
        guard enabled != nil || verifyGiven || authorityFile != nil else { return nil }
        if enabled == false, verifyGiven || authorityFile != nil {
            throw reader.error(.invalidValue, key: "tls", "is false, but tls_verify or tls_ca_file asks for TLS")
        }
        if verification == .none, authorityFile != nil {
            throw reader.error(.invalidValue, key: "tls_verify", "is none, but tls_ca_file gives an authority to check against")
        }
        return SQLTLS(enabled: enabled ?? true, verification: verification, authorityFile: authorityFile)
    }

    /// `dsn` with this setting in `driver`'s words, or the reason it cannot take it.
    func apply(to dsn: String, driver: String) -> Result<String, TLSProblem> {
        switch driver {
        case "postgres":
            let isURI = dsn.hasPrefix("postgres://") || dsn.hasPrefix("postgresql://")
            let lowered = dsn.lowercased()
            if lowered.contains("sslmode") || lowered.contains("sslrootcert") { return .failure(.dsnSaysItToo) }
            let mode =
                !enabled ? "disable" : verification == .full ? "verify-full" : verification == .certificate ? "verify-ca" : "require"
            var settings = [("sslmode", mode)]
            if let authorityFile { settings.append(("sslrootcert", authorityFile)) }
            return .success(isURI ? Self.appendingQuery(settings, to: dsn) : Self.appendingKeywords(settings, to: dsn))
        case "mariadb":
            let lowered = dsn.lowercased()
            if ["tls=", "ssl-mode=", "sslmode=", "tls-ca=", "ssl-ca=", "sslrootcert="].contains(where: lowered.contains) {
                return .failure(.dsnSaysItToo)
            }
            if enabled, verification == .certificate { return .failure(.noCertificateOnlyMode) }
            let mode = !enabled ? "false" : verification == .none ? "required" : "verify-identity"
            var settings = [("tls", mode)]
            if let authorityFile { settings.append(("tls-ca", authorityFile)) }
            return .success(Self.appendingQuery(settings, to: dsn))
        default:
            return .failure(.noNetwork)
        }
    }

    /// Why a DSN cannot take the TLS keys.
    enum TLSProblem: Error {
        case dsnSaysItToo, noCertificateOnlyMode, noNetwork

        var reason: String {
            switch self {
            case .dsnSaysItToo: "and the node's DSN both say how to use TLS: say it in one place"
            case .noCertificateOnlyMode: "certificate is not a mode of MariaDB's client, which checks the name with the chain"
            case .noNetwork: "applies to no SQLite node: a file has no network"
            }
        }
    }

    /// libpq's keyword form: ` key=value` each, the value quoted when it needs to be.
    private static func appendingKeywords(_ settings: [(String, String)], to dsn: String) -> String {
        settings.reduce(dsn) { text, setting in
            let value =
                setting.1.contains(where: { $0 == " " || $0 == "'" || $0 == "\\" })
                ? "'" + setting.1.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
                : setting.1
            return text + " \(setting.0)=\(value)"
        }
    }

    /// A URL's query: `?key=value` or `&key=value`, percent-encoded.
    private static func appendingQuery(_ settings: [(String, String)], to dsn: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return settings.reduce(dsn) { text, setting in
            let value = setting.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? setting.1
            return text + (text.contains("?") ? "&" : "?") + "\(setting.0)=\(value)"
        }
    }
}

import CMariaDB
import Foundation

/// Process-wide Connector/C set-up and the options every handle gets.
enum MariaDBLibrary {
    /// `mysql_library_init`, run exactly once, before the first handle of any
    /// thread (it is not thread-safe; a Swift `static let` runs its initializer once).
    static let isInitialized: Bool = mysql_server_init(0, nil, nil) == 0

    /// Character set, UTC session, no `LOAD DATA LOCAL`, and TLS.
    static func applyOptions(_ configuration: MariaDBConfiguration, to mysql: UnsafeMutablePointer<MYSQL>) {
        // `localhost` means the default Unix socket to Connector/C; the DSN says which transport.
        var transport = configuration.unixSocket == nil ? MYSQL_PROTOCOL_TCP.rawValue : MYSQL_PROTOCOL_SOCKET.rawValue
        mysql_options(mysql, MYSQL_OPT_PROTOCOL, &transport)
        mysql_options(mysql, MYSQL_SET_CHARSET_NAME, configuration.charset)
        mysql_options(mysql, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'")
        var localInfile: UInt32 = 0
        mysql_options(mysql, MYSQL_OPT_LOCAL_INFILE, &localInfile)
        var enforce: my_bool = 0
        var verify: my_bool = 0
        switch configuration.tls {
        case .disabled: break
        case .preferred: mysql_ssl_set(mysql, nil, nil, nil, nil, nil)
        case .required: enforce = 1
        case .verifyIdentity:
            enforce = 1
            verify = 1
        }
        mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &enforce)
        mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify)
        if let authority = configuration.tlsCertificateAuthority {
            mysql_options(mysql, MYSQL_OPT_SSL_CA, authority)
        }
    }
}

/// A C copy of a string that stays put until freed: Connector/C's
/// non-blocking calls keep reading their arguments after `_start` returns.
struct CText {
    let pointer: UnsafeMutablePointer<CChar>
    let length: Int

    init(_ text: String) {
        let bytes = Array(text.utf8)
        length = bytes.count
        pointer = .allocate(capacity: bytes.count + 1)
        for (index, byte) in bytes.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[bytes.count] = 0
    }

    init?(_ text: String?) {
        guard let text else { return nil }
        self.init(text)
    }

    func free() { pointer.deallocate() }
}

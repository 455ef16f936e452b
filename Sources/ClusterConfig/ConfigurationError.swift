/// A configuration file that cannot be used, said in one line.
///
/// The line names the file and the offending key path (for example
/// `clusters.local.nodes[1].dsn`), and the line and column when the TOML
/// itself does not parse. Values are never echoed, so a DSN with a password
/// cannot leak through an error.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong.
    public enum Reason: Sendable, Equatable {
        /// The file could not be read.
        case unreadable
        /// The text is not valid TOML.
        case syntax
        /// A key the schema does not know.
        case unknownKey
        /// A required key is absent.
        case missingKey
        /// A key holds a value of the wrong TOML type.
        case wrongType
        /// A value of the right type that is not allowed (an empty name, a duplicate node).
        case invalidValue
        /// A cluster was asked for that the file does not define.
        case unknownCluster
        /// A service was asked for that the file does not define.
        case unknownService
        /// A `${NAME}` reference names an environment variable that is not set.
        case unsetVariable
    }

    /// The category of the problem.
    public var reason: Reason
    /// The file the error concerns.
    public var file: String
    /// The dotted key path, when the error concerns a key.
    public var keyPath: String?
    /// The line in the file, when known (TOMLKit reports it for syntax errors).
    public var line: Int?
    /// The column in the file, when known.
    public var column: Int?
    /// The explanation.
    public var message: String

    /// Creates an error.
    init(_ reason: Reason, file: String, keyPath: String? = nil, line: Int? = nil, column: Int? = nil, message: String) {
        self.reason = reason
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file[:line[:column]]: [key: ]message`, on one line.
    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        let key = keyPath.map { "\($0): " } ?? ""
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        return "\(location): \(key)\(oneLine)"
    }
}

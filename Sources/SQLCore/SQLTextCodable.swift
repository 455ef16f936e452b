/// A value whose text form is exact and canonical, and is therefore also its
/// `Codable` form: a JSON or TOML file holds `"2024-02-29"`, not a structure.
public protocol SQLTextCodable: LosslessStringConvertible, Codable {}

extension SQLTextCodable {
    /// Decodes the value from its text.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a valid \(Self.self)"))
        }
        self = value
    }

    /// Encodes the value as its text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

import Foundation

/// Hides passwords in DSNs before they are shown anywhere.
public enum DSNRedaction {
    /// Replaces the password in `user:password@` URL and Go-MySQL forms and in
    /// `password=...` key/value or query forms with `***`.
    public static func redact(_ dsn: String) -> String {
        var text = dsn
        if let at = text.lastIndex(of: "@"), let schemeEnd = text.range(of: "://")?.upperBound ?? Optional(text.startIndex),
           schemeEnd <= at, let colon = text[schemeEnd..<at].firstIndex(of: ":") {
            text.replaceSubrange(text.index(after: colon)..<at, with: "***")
        }
        for key in ["password=", "pass=", "pwd="] {
            var searchStart = text.startIndex
            while let range = text.range(of: key, options: .caseInsensitive, range: searchStart..<text.endIndex) {
                let valueEnd = text[range.upperBound...].firstIndex(where: { $0 == " " || $0 == "&" || $0 == ";" }) ?? text.endIndex
                text.replaceSubrange(range.upperBound..<valueEnd, with: "***")
                searchStart = text.index(range.upperBound, offsetBy: 3)
            }
        }
        return text
    }
}

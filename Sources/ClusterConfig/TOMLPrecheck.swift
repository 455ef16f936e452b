/// Refuses the inputs that crash the TOML parser under TOMLKit (toml++ 3), so
/// that a bad file is a ``ConfigurationError`` and never an abort.
///
/// Found by fuzzing (`scripts/fuzz.sh … config`, inputs in `Fuzz/regressions`):
/// - a NUL byte: TOMLKit hands the text over as a C string, cut at the first
///   NUL, and the parser then asserts on the cut-short text;
/// - a table header whose name starts with a character that can neither
///   start a bare key nor open a quoted one (`[é]`, `[!]`, `[[.a]]`): toml++
///   asserts (`parse_key`) instead of reporting it, and in a build without
///   assertions the same check is an optimizer assumption, so undefined;
/// - a `}` inside an array (`a = [}`, `a = [1, }`): toml++ asserts
///   (`parse_value`) where a value should start. A `}` can only close an
///   inline table, so it is an error there in any case.
///
/// A light scanner: strings (basic, literal, multi-line), comments and the
/// nesting of arrays and inline tables are followed only far enough to know
/// where a line starts a table header.
enum TOMLPrecheck {
    /// Where the text first holds one of the inputs above, and why.
    struct Problem: Equatable {
        /// The line, from 1.
        var line: Int
        /// The column, from 1 (in bytes).
        var column: Int
        /// What is wrong, without the offending text.
        var message: String
    }

    static func problem(in text: String) -> Problem? {
        let bytes = Array(text.utf8)
        if let nul = bytes.firstIndex(of: 0) {
            let lineStart = bytes[..<nul].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let line = bytes[..<nul].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            return Problem(line: line, column: nul - lineStart + 1, message: "the file holds a NUL byte, which TOML does not allow")
        }
        var index = 0
        var line = 1
        var lineStart = 0
        var open: [UInt8] = []  // the [ and { of values not closed yet, innermost last
        func column(_ at: Int) -> Int { at - lineStart + 1 }
        func isBareKeyByte(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
                || byte == 0x2D
        }
        func starts(with token: String, at position: Int) -> Bool {
            let token = Array(token.utf8)
            return position + token.count <= bytes.count && Array(bytes[position..<position + token.count]) == token
        }
        var atLineStart = true
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }  // a byte order mark, which the parser skips
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                index += 1
                line += 1
                lineStart = index
                atLineStart = true
                continue
            }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                index += 1
                continue
            }
            if atLineStart, open.isEmpty, byte == UInt8(ascii: "[") {
                var name = index + 1
                if name < bytes.count, bytes[name] == UInt8(ascii: "[") { name += 1 }
                while name < bytes.count, bytes[name] == UInt8(ascii: " ") || bytes[name] == UInt8(ascii: "\t") { name += 1 }
                if name < bytes.count {
                    let first = bytes[name]
                    let closes = first == UInt8(ascii: "]")  // an empty name: toml++ reports it itself
                    if !closes, !isBareKeyByte(first), first != UInt8(ascii: "\""), first != UInt8(ascii: "'") {
                        return Problem(
                            line: line, column: column(name), message: "a table name must start with a letter, a digit, _, - or a quote")
                    }
                }
                // The header itself: up to its end of line, skipping its quoted names.
                atLineStart = false
                index += 1
                continue
            }
            atLineStart = false
            switch byte {
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") {
                    index += 1
                }
                continue
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                let multiLine = starts(with: byte == UInt8(ascii: "\"") ? "\"\"\"" : "'''", at: index)
                let delimiter = multiLine ? (byte == UInt8(ascii: "\"") ? "\"\"\"" : "'''") : String(UnicodeScalar(byte))
                let escapes = byte == UInt8(ascii: "\"")
                index += multiLine ? 3 : 1
                while index < bytes.count {
                    let current = bytes[index]
                    if escapes, current == UInt8(ascii: "\\") {
                        index += 2
                        continue
                    }
                    if current == UInt8(ascii: "\n") {
                        if !multiLine { break }  // an unterminated string: the parser reports it
                        line += 1
                        lineStart = index + 1
                    }
                    if starts(with: delimiter, at: index) {
                        index += delimiter.utf8.count
                        break
                    }
                    index += 1
                }
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                open.append(byte)
            case UInt8(ascii: "}") where open.last == UInt8(ascii: "["):
                return Problem(line: line, column: column(index), message: "a } inside an array, where a value or ] should be")
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                _ = open.popLast()
            default:
                break
            }
            index += 1
        }
        return nil
    }
}

/// The one placeholder style of ClusterSQL: `?` for each positional parameter.
///
/// SQLite and MariaDB take `?` natively. PostgreSQL numbers its parameters
/// (`$1`, `$2`, ...), so its backend rewrites the SQL with ``numbered(_:)``,
/// which leaves alone every `?` inside string literals, quoted identifiers,
/// dollar-quoted bodies and comments. Where PostgreSQL's own `?` operators are
/// wanted (jsonb `?`, `?|`, `?&`), write them doubled: `??`, `??|`, `??&`.
package enum SQLPlaceholders {
    /// Rewrites `?` placeholders to `$1`, `$2`, ... and `??` to a literal `?`,
    /// following PostgreSQL's lexical rules. Returns the new text and the
    /// number of placeholders.
    package static func numbered(_ sql: String) -> (sql: String, count: Int) {
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        var count = 0
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                let end = endOfQuoted(bytes, from: i, quote: byte, backslashEscapes: isEscapeString(bytes, quoteAt: i))
                out.append(contentsOf: bytes[i..<end])
                i = end
            case UInt8(ascii: "-") where next(bytes, i) == UInt8(ascii: "-"):
                let end = bytes[i...].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? bytes.count
                out.append(contentsOf: bytes[i..<end])
                i = end
            case UInt8(ascii: "/") where next(bytes, i) == UInt8(ascii: "*"):
                let end = endOfBlockComment(bytes, from: i)
                out.append(contentsOf: bytes[i..<end])
                i = end
            case UInt8(ascii: "$"):
                if let end = endOfDollarQuoted(bytes, from: i) {
                    out.append(contentsOf: bytes[i..<end])
                    i = end
                } else {
                    out.append(byte)
                    i += 1
                }
            case UInt8(ascii: "?"):
                if next(bytes, i) == UInt8(ascii: "?") {
                    out.append(byte)
                    i += 2
                } else {
                    count += 1
                    out.append(UInt8(ascii: "$"))
                    out.append(contentsOf: String(count).utf8)
                    i += 1
                }
            default:
                out.append(byte)
                i += 1
            }
        }
        return (String(decoding: out, as: UTF8.self), count)
    }

    private static func next(_ bytes: [UInt8], _ i: Int) -> UInt8? {
        i + 1 < bytes.count ? bytes[i + 1] : nil
    }

    /// `E'...'` strings take backslash escapes; plain ones do not (standard_conforming_strings).
    private static func isEscapeString(_ bytes: [UInt8], quoteAt i: Int) -> Bool {
        guard bytes[i] == UInt8(ascii: "'"), i > 0, bytes[i - 1] | 0x20 == UInt8(ascii: "e") else { return false }
        return i == 1 || !isIdentifierByte(bytes[i - 2])
    }

    private static func endOfQuoted(_ bytes: [UInt8], from start: Int, quote: UInt8, backslashEscapes: Bool) -> Int {
        var i = start + 1
        while i < bytes.count {
            if backslashEscapes && bytes[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if bytes[i] == quote {
                if next(bytes, i) == quote {  // doubled quote inside the literal
                    i += 2
                    continue
                }
                return i + 1
            }
            i += 1
        }
        return bytes.count
    }

    /// PostgreSQL block comments nest.
    private static func endOfBlockComment(_ bytes: [UInt8], from start: Int) -> Int {
        var depth = 0
        var i = start
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "/"), next(bytes, i) == UInt8(ascii: "*") {
                depth += 1
                i += 2
            } else if bytes[i] == UInt8(ascii: "*"), next(bytes, i) == UInt8(ascii: "/") {
                depth -= 1
                i += 2
                if depth == 0 { return i }
            } else {
                i += 1
            }
        }
        return bytes.count
    }

    /// `$tag$ ... $tag$` where tag is empty or an identifier not starting with a digit;
    /// `nil` when the `$` does not open such a body (for example `$1`).
    private static func endOfDollarQuoted(_ bytes: [UInt8], from start: Int) -> Int? {
        if start > 0, isIdentifierByte(bytes[start - 1]) { return nil }
        var i = start + 1
        while i < bytes.count, bytes[i] != UInt8(ascii: "$") {
            guard isIdentifierByte(bytes[i]), !(i == start + 1 && asciiDigit(bytes[i]) != nil) else { return nil }
            i += 1
        }
        guard i < bytes.count else { return nil }
        let tag = bytes[start...i]
        var j = i + 1
        while j + tag.count <= bytes.count {
            if bytes[j] == UInt8(ascii: "$"), bytes[j..<(j + tag.count)].elementsEqual(tag) {
                return j + tag.count
            }
            j += 1
        }
        return bytes.count
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || byte >= 0x80 || asciiDigit(byte) != nil
            || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
    }
}

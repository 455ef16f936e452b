import SQLCore

/// Renders results as an aligned table or as JSON lines.
struct ResultPrinter {
    /// JSON lines instead of a table.
    let json: Bool

    /// Rows as a table with a header and a row count, or one JSON object per row.
    func render(_ rows: SQLRows) -> String {
        if json {
            return rows.map { row in
                let fields = zip(row.columns.names, row.values).map { JSONText.string($0) + ":" + JSONText.value($1) }
                return "{" + fields.joined(separator: ",") + "}\n"
            }.joined()
        }
        let header = rows.columns.names.map(Self.escaped)  // column names come from the server too
        let cells = rows.map { $0.values.map { Self.escaped($0.displayText) } }
        var widths = header.map(\.count)
        for line in cells {
            for (i, text) in line.enumerated() { widths[i] = max(widths[i], text.count) }
        }
        func format(_ line: [String]) -> String {
            zip(line, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }
                .joined(separator: " | ").replacingTrailingSpaces() + "\n"
        }
        var out = format(header)
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "-+-") + "\n"
        for line in cells { out += format(line) }
        out += "(\(rows.count) row\(rows.count == 1 ? "" : "s"))\n"
        return out
    }

    /// What a change reported.
    func render(_ execution: SQLExecution) -> String {
        if json {
            let id = execution.lastInsertID.map(String.init) ?? "null"
            return "{\"rows_affected\":\(execution.rowsAffected),\"last_insert_id\":\(id)}\n"
        }
        var text = "\(execution.rowsAffected) row\(execution.rowsAffected == 1 ? "" : "s") affected"
        if let id = execution.lastInsertID, execution.rowsAffected > 0 { text += ", last insert id \(id)" }
        return text + "\n"
    }

    /// Text for a table cell or header with every control character escaped (C0, DEL and C1:
    /// `\u{1b}`, `\u{9b}`...), so that what a server sent can neither break the layout nor
    /// drive the terminal (a CSI sequence could rewrite the screen or hide a line).
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let value = scalar.value
                out += value < 0x20 || (0x7F...0x9F).contains(value) ? "\\u{\(String(value, radix: 16))}" : String(scalar)
            }
        }
        return out
    }
}

extension String {
    fileprivate func replacingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}

/// Minimal JSON text for result values.
enum JSONText {
    /// A JSON string literal.
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A value: numbers and booleans bare, NaN/infinities, blobs (hex), dates and decimals as strings.
    static func value(_ value: SQLValue) -> String {
        switch value {
        case .null: "null"
        case .integer(let v): String(v)
        case .double(let v): v.isFinite ? String(v) : string(String(v))
        case .bool(let v): v ? "true" : "false"
        case .text(let v): string(v)
        case .blob, .date, .timestamp, .decimal: string(value.displayText)
        }
    }
}

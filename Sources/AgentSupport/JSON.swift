import Engine
import Foundation

/// A JSON object with keys in insertion order (deterministic output).
package struct JSONObject {
    package private(set) var keys: [String] = []
    package private(set) var values: [String: JSONValue] = [:]

    package init() {}

    package subscript(key: String) -> JSONValue? {
        get { values[key] }
        set {
            if values[key] == nil { keys.append(key) }
            values[key] = newValue
        }
    }
}

/// A JSON value rendered without Foundation's number formatting.
package indirect enum JSONValue {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case null
    case object(JSONObject)
    case array([JSONValue])

    package func render(indent: Int) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let closePad = String(repeating: "  ", count: indent)
        switch self {
        case .number(let d): return d.isFinite ? formatNumber(d) : "null"
        case .integer(let i): return String(i)
        case .string(let s): return jsonQuote(s)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .object(let o):
            if o.keys.isEmpty { return "{}" }
            let body = o.keys.map { "\(pad)\(jsonQuote($0)): \(o.values[$0]!.render(indent: indent + 1))" }
            return "{\n" + body.joined(separator: ",\n") + "\n\(closePad)}"
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[" + a.map { $0.render(indent: indent + 1) }.joined(separator: ", ") + "]"
        }
    }
}

/// A JSON string literal of `s` (quotes, backslashes and control characters escaped).
package func jsonQuote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

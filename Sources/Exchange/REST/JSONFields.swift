public import Engine
import Foundation

/// Typed access to a JSON object of a Bybit reply. Numbers arrive as strings; a missing required field or one that
/// does not parse is a `BybitError` naming the field's path (`result.list[0].price`).
public struct JSONFields: @unchecked Sendable {
    // Holds only JSONSerialization output (immutable dictionaries of strings, numbers, arrays, dictionaries).
    public let object: [String: Any]
    public let path: String
    let endpoint: String

    public init(_ object: [String: Any], path: String, endpoint: String) {
        self.object = object
        self.path = path
        self.endpoint = endpoint
    }

    public func fail(_ key: String, _ why: String) -> BybitError {
        BybitError(.decoding, endpoint: endpoint, message: "\(path).\(key) \(why)")
    }

    /// A present text field (numbers are accepted and printed).
    public func string(_ key: String) throws(BybitError) -> String {
        guard let v = object[key], !(v is NSNull) else { throw fail(key, "is missing") }
        if let s = v as? String { return s }
        if let n = v as? NSNumber { return n.stringValue }
        throw fail(key, "is not text")
    }

    /// A text field that may be missing or empty.
    public func optionalString(_ key: String) -> String? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        if let s = v as? String { return s.isEmpty ? nil : s }
        if let n = v as? NSNumber { return n.stringValue }
        return nil
    }

    /// A decimal field (Bybit sends `"50000.1"`).
    public func decimal(_ key: String) throws(BybitError) -> ScaledDecimal {
        let s = try string(key)
        guard let d = ScaledDecimal(s) else { throw fail(key, "'\(s)' is not a decimal number") }
        return d
    }

    /// A decimal that may be missing or empty (`stopLoss: ""`).
    public func optionalDecimal(_ key: String) throws(BybitError) -> ScaledDecimal? {
        guard let s = optionalString(key) else { return nil }
        guard let d = ScaledDecimal(s) else { throw fail(key, "'\(s)' is not a decimal number") }
        return d
    }

    /// An integer field, as text or number.
    public func int64(_ key: String) throws(BybitError) -> Int64 {
        let s = try string(key)
        guard let v = Int64(s) else { throw fail(key, "'\(s)' is not an integer") }
        return v
    }

    /// A boolean field (true/false, or "true"/"false").
    public func bool(_ key: String) throws(BybitError) -> Bool {
        guard let v = object[key] else { throw fail(key, "is missing") }
        if let b = v as? Bool { return b }
        if let s = v as? String, let b = Bool(s) { return b }
        throw fail(key, "is not true or false")
    }

    /// A nested object.
    public func object(_ key: String) throws(BybitError) -> JSONFields {
        guard let o = object[key] as? [String: Any] else { throw fail(key, "is missing or not an object") }
        return JSONFields(o, path: "\(path).\(key)", endpoint: endpoint)
    }

    /// An array of objects.
    public func list(_ key: String) throws(BybitError) -> [JSONFields] {
        guard let a = object[key] as? [Any] else { throw fail(key, "is missing or not a list") }
        var out: [JSONFields] = []
        for (i, item) in a.enumerated() {
            guard let o = item as? [String: Any] else { throw fail("\(key)[\(i)]", "is not an object") }
            out.append(JSONFields(o, path: "\(path).\(key)[\(i)]", endpoint: endpoint))
        }
        return out
    }

    /// An array of arrays of text (klines).
    public func rows(_ key: String) throws(BybitError) -> [[String]] {
        guard let a = object[key] as? [[Any]] else { throw fail(key, "is missing or not a list of lists") }
        return a.map { $0.map { ($0 as? String) ?? "\($0)" } }
    }
}

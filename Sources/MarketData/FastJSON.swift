/// A small JSON reader over UTF-8 bytes for the hot stream messages: no Foundation objects, values point into the
/// buffer. Strings with escapes are rejected (Bybit's market messages have none); callers fall back to
/// JSONSerialization for anything this does not read.
package struct FastJSON {
    package indirect enum Value {
        case object([(key: Range<Int>, value: Value)])
        case array([Value])
        case string(Range<Int>)
        case number(Range<Int>)
        case bool(Bool)
        case null
    }

    package let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0

    package init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The whole document, or nil when it is not JSON this reader handles.
    package mutating func parse() -> Value? {
        guard let v = value() else { return nil }
        skipSpace()
        return i == bytes.count ? v : nil
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func value() -> Value? {
        skipSpace()
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(key: Range<Int>, value: Value)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard let key = string() else { return nil }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                guard let v = value() else { return nil }
                members.append((key, v))
                skipSpace()
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(members)
                }
                return nil
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [Value] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                guard let v = value() else { return nil }
                items.append(v)
                skipSpace()
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                }
                return nil
            }
        case UInt8(ascii: "\""):
            return string().map { .string($0) }
        case UInt8(ascii: "t"):
            return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"):
            return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"):
            return literal("null") ? .null : nil
        default:
            let start = i
            while i < bytes.count {
                let c = bytes[i]
                guard
                    (c >= 48 && c <= 57) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                        || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                else { break }
                i += 1
            }
            return i > start ? .number(start..<i) : nil
        }
    }

    private mutating func string() -> Range<Int>? {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
            if bytes[i] == UInt8(ascii: "\\") { return nil }
            i += 1
        }
        guard i < bytes.count else { return nil }
        defer { i += 1 }
        return start..<i
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    // Access helpers.

    package func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount else { return false }
        for k in 0..<r.count where bytes[r.lowerBound + k] != s.utf8Start[k] { return false }
        return true
    }

    package func hasPrefix(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count >= s.utf8CodeUnitCount else { return false }
        for k in 0..<s.utf8CodeUnitCount where bytes[r.lowerBound + k] != s.utf8Start[k] { return false }
        return true
    }

    package func member(_ v: Value, _ key: StaticString) -> Value? {
        guard case .object(let members) = v else { return nil }
        for m in members where equals(m.key, key) { return m.value }
        return nil
    }

    package func int64(_ v: Value?) -> Int64? {
        guard let v else { return nil }
        let r: Range<Int>
        switch v {
        case .number(let n): r = n
        case .string(let s): r = s
        default: return nil
        }
        var x: Int64 = 0
        guard !r.isEmpty, r.count <= 18 else { return nil }
        for k in r {
            let c = bytes[k]
            guard c >= 48 && c <= 57 else { return nil }
            x = x * 10 + Int64(c - 48)
        }
        return x
    }

    package func text(_ v: Value?) -> Range<Int>? {
        guard case .string(let r)? = v else { return nil }
        return r
    }
}

import AgentSupport
public import Engine
import Foundation

/// The type and allowed values of one configuration parameter.
public enum ParameterKind: Sendable {
    case integer(ClosedRange<Int>)
    /// A real number in `lower...upper`; an open end excludes its bound.
    case real(lower: Double, upper: Double, openLower: Bool = false, openUpper: Bool = false)
    /// A real number as `.real`, or `off` (also YAML's `null` and `~`) for a rule that is switched off.
    case realOrOff(lower: Double, upper: Double, openLower: Bool = false)
    case boolean
    case choice([String])
    /// An exact positive decimal (tick size, quantity step).
    case positiveDecimal
    case text
    /// `off`, or `host:port` (`[v6]:port`) to listen on.
    case listenAddress
}

/// A parameter's value.
public enum ParameterValue: Sendable, Hashable, CustomStringConvertible {
    case integer(Int)
    case real(Double)
    case boolean(Bool)
    case text(String)
    case decimal(ScaledDecimal)

    public var description: String {
        switch self {
        case .integer(let v): String(v)
        case .real(let v): formatNumber(v)
        case .boolean(let v): v ? "true" : "false"
        case .text(let v): v
        case .decimal(let v): v.description
        }
    }
}

/// One configuration parameter: dotted key (`group.name`), kind, default and a one-line description.
public struct Parameter: Sendable {
    public let key: String
    public let kind: ParameterKind
    public let defaultValue: ParameterValue
    public let summary: String

    init(_ key: String, _ kind: ParameterKind, _ defaultValue: ParameterValue, _ summary: String) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.summary = summary
    }

    /// Whether `off` (YAML `null`) is a value of this parameter.
    public var mayBeOff: Bool {
        if case .realOrOff = kind { return true }
        return false
    }

    /// The group (`value_area`) and the name (`va_fraction`).
    public var group: Substring { key.split(separator: ".")[0] }
    public var name: Substring { key.split(separator: ".")[1] }

    /// Reads a value from YAML scalar text; nil with a reason when it does not fit.
    public func parse(_ text: String) -> Result<ParameterValue, ParameterProblem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .integer(let range):
            guard let v = Int(trimmed.replacingOccurrences(of: "_", with: "")) else {
                return .failure(.wrongType("an integer", trimmed))
            }
            guard range.contains(v) else {
                return .failure(.outOfRange(trimmed, "\(range.lowerBound)...\(range.upperBound)"))
            }
            return .success(.integer(v))
        case .real(let lower, let upper, let openLower, let openUpper):
            return Self.real(trimmed, lower, upper, openLower, openUpper, expected: "a number")
        case .realOrOff(let lower, let upper, let openLower):
            if ["off", "null", "~", ""].contains(trimmed.lowercased()) { return .success(.text("off")) }
            return Self.real(trimmed, lower, upper, openLower, false, expected: "a number or off")
        case .boolean:
            switch trimmed.lowercased() {
            case "true": return .success(.boolean(true))
            case "false": return .success(.boolean(false))
            default: return .failure(.wrongType("true or false", trimmed))
            }
        case .choice(let options):
            guard options.contains(trimmed) else {
                return .failure(.wrongType("one of \(options.joined(separator: ", "))", trimmed))
            }
            return .success(.text(trimmed))
        case .positiveDecimal:
            guard let d = ScaledDecimal(trimmed) else { return .failure(.wrongType("a decimal number", trimmed)) }
            guard d.mantissa > 0 else { return .failure(.outOfRange(trimmed, "> 0")) }
            return .success(.decimal(d))
        case .text:
            return .success(.text(trimmed))
        case .listenAddress:
            guard trimmed == "off" || ListenAddress(trimmed) != nil else {
                return .failure(.wrongType("off or host:port (127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464)", trimmed))
            }
            return .success(.text(trimmed))
        }
    }

    /// A real number in `lower...upper` (an open end excludes its bound); `expected` names what a non-number should
    /// have been.
    private static func real(
        _ text: String, _ lower: Double, _ upper: Double, _ openLower: Bool, _ openUpper: Bool, expected: String
    ) -> Result<ParameterValue, ParameterProblem> {
        guard let v = Double(text.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            return .failure(.wrongType(expected, text))
        }
        let aboveLower = openLower ? v > lower : v >= lower
        let belowUpper = openUpper ? v < upper : v <= upper
        guard aboveLower && belowUpper else {
            let range = "\(openLower ? "(" : "[")\(formatNumber(lower)), \(formatNumber(upper))\(openUpper ? ")" : "]")"
            return .failure(.outOfRange(text, range))
        }
        return .success(.real(v))
    }
}

/// Why a value does not fit its parameter.
public enum ParameterProblem: Error, Sendable, CustomStringConvertible {
    case wrongType(String, String)
    case outOfRange(String, String)

    public var description: String {
        switch self {
        case .wrongType(let expected, let got): "expected \(expected), got '\(got)'"
        case .outOfRange(let got, let range): "\(got) is out of range \(range)"
        }
    }
}

/// A TCP address to listen on: `host:port`, the host an IPv4 address, a name or `[IPv6]`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65_535).contains(port)
        else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(" ") else { return nil }
        self.host = host
        self.port = port
    }

    /// Loopback only: `127.0.0.0/8`, `::1` or `localhost`.
    public var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// An exact decimal number `mantissa / 10^scale`, used for an instrument's tick and quantity step and for prices
/// and sizes read from text, so that converting them to ticks and lots never goes through binary floating point.
public struct ScaledDecimal: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The digits of the number with the decimal point removed.
    public var mantissa: Int64
    /// How many of those digits stand after the decimal point (0...18).
    public var scale: Int

    public init(mantissa: Int64, scale: Int) {
        precondition(scale >= 0 && scale <= 18, "scale out of range")
        self.mantissa = mantissa
        self.scale = scale
    }

    /// Parses a plain decimal (`"0.1"`, `"-12.500"`, `"3"`, `"1.5e-3"`); nil when the text is not one or does
    /// not fit 18 significant digits.
    public init?(_ text: some StringProtocol) {
        var bytes = Array(text.utf8)
        guard let value = bytes.withUnsafeMutableBufferPointer({ ScaledDecimal.parse($0[...]) }) else { return nil }
        self = value
    }

    /// Parses a decimal from raw UTF-8 bytes; the fast path of the CSV readers.
    @inlinable
    public static func parse(_ bytes: Slice<UnsafeMutableBufferPointer<UInt8>>) -> ScaledDecimal? {
        parse(UnsafeBufferPointer(rebasing: bytes))
    }

    /// Parses a decimal from raw UTF-8 bytes; the fast path of the CSV readers.
    @inlinable
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> ScaledDecimal? {
        var i = bytes.startIndex
        let end = bytes.endIndex
        guard i < end else { return nil }
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        } else if bytes[i] == UInt8(ascii: "+") {
            i += 1
        }
        var mantissa: Int64 = 0
        var scale = 0
        var digits = 0
        var seenPoint = false
        var any = false
        while i < end {
            let c = bytes[i]
            if c >= 48 && c <= 57 {
                any = true
                if digits == 0 && c == 48 {
                    // Leading zeros add no significant digit.
                } else {
                    digits += 1
                    if digits > 18 { return nil }
                }
                mantissa = mantissa &* 10 &+ Int64(c &- 48)
                if seenPoint { scale += 1 }
            } else if c == UInt8(ascii: ".") {
                if seenPoint { return nil }
                seenPoint = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                break
            } else {
                return nil
            }
            i += 1
        }
        guard any else { return nil }
        if i < end {
            // Exponent part.
            i += 1
            var expNegative = false
            if i < end && (bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+")) {
                expNegative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < end else { return nil }
            var exponent = 0
            while i < end {
                let c = bytes[i]
                guard c >= 48 && c <= 57 else { return nil }
                exponent = exponent * 10 + Int(c - 48)
                if exponent > 40 { return nil }
                i += 1
            }
            if expNegative {
                scale += exponent
            } else {
                while exponent > 0 && scale > 0 {
                    scale -= 1
                    exponent -= 1
                }
                while exponent > 0 {
                    let (m, o) = mantissa.multipliedReportingOverflow(by: 10)
                    if o { return nil }
                    mantissa = m
                    exponent -= 1
                }
            }
        }
        // Trailing zeros after the point carry no information; drop them to keep scales small.
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10
            scale -= 1
        }
        guard scale <= 18 else { return nil }
        return ScaledDecimal(mantissa: negative ? -mantissa : mantissa, scale: scale)
    }

    /// The nearest `Double`: a single correctly rounded division by a power of ten.
    public var doubleValue: Double {
        Double(mantissa) / powersOfTen[scale]
    }

    public var description: String {
        formatScaled(mantissa, scale: scale)
    }

    /// `round(self / unit)` with halves away from zero, computed exactly (docs/SPEC.md §1).
    @inlinable
    public func count(of unit: ScaledDecimal) -> Int64? {
        // self / unit = (m * 10^us) / (um * 10^s)
        let shift = unit.scale - scale
        if shift >= 0 {
            let (num, o) = mantissa.multipliedReportingOverflow(by: Int64(powersOfTenInt[shift]))
            if o { return nil }
            if unit.mantissa == 1 { return num }
            return roundedDiv(num, unit.mantissa)
        } else {
            let (den, o) = unit.mantissa.multipliedReportingOverflow(by: Int64(powersOfTenInt[-shift]))
            if o { return nil }
            return roundedDiv(mantissa, den)
        }
    }

    /// The value of `count` whole units as a `Double` (`count * unit`), correctly rounded.
    @inlinable
    public func value(ofCount count: Int64) -> Double {
        let (m, o) = count.multipliedReportingOverflow(by: mantissa)
        if o { return Double(count) * doubleValue }
        return Double(m) / powersOfTen[scale]
    }

    /// The value of `numerator / denominator` whole units as a `Double`, with one rounding where the numbers allow.
    @inlinable
    public func value(ofRatio numerator: Int64, _ denominator: Int64) -> Double {
        let (m, o1) = numerator.multipliedReportingOverflow(by: mantissa)
        let (d, o2) = denominator.multipliedReportingOverflow(by: Int64(powersOfTenInt[scale]))
        if o1 || o2 || m.magnitude > (1 << 53) || d.magnitude > (1 << 53) {
            return Double(numerator) / Double(denominator) * doubleValue
        }
        return Double(m) / Double(d)
    }
}

/// 10^0 ... 10^18 as doubles (all exact).
public let powersOfTen: [Double] = (0...18).map { i in (0..<i).reduce(1.0) { acc, _ in acc * 10 } }
/// 10^0 ... 10^18 as integers.
public let powersOfTenInt: [Int64] = (0...18).map { i in (0..<i).reduce(Int64(1)) { acc, _ in acc * 10 } }

/// Writes `mantissa / 10^scale` as plain decimal text without trailing zeros (`500001, 1` → `"50000.1"`).
public func formatScaled(_ mantissa: Int64, scale: Int) -> String {
    var m = mantissa
    var s = scale
    while s > 0 && m % 10 == 0 {
        m /= 10
        s -= 1
    }
    if s == 0 { return String(m) }
    let negative = m < 0
    var digits = String(m.magnitude)
    if digits.count <= s {
        digits = String(repeating: "0", count: s - digits.count + 1) + digits
    }
    let point = digits.index(digits.endIndex, offsetBy: -s)
    return (negative ? "-" : "") + digits[..<point] + "." + digits[point...]
}

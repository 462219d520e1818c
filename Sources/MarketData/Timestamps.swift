/// The unit of a file's timestamps, detected from its first data row (issue: seconds with or without a fraction,
/// milliseconds, microseconds, nanoseconds since the Unix epoch, or ISO 8601).
public enum TimestampUnit: String, Sendable, Equatable, CustomStringConvertible {
    case seconds, milliseconds, microseconds, nanoseconds, iso8601

    public var description: String {
        switch self {
        case .seconds: "seconds"
        case .milliseconds: "milliseconds"
        case .microseconds: "microseconds"
        case .nanoseconds: "nanoseconds"
        case .iso8601: "ISO 8601"
        }
    }

    /// The unit whose range holds an epoch count with this integer part: seconds from 1973 to 5138, and the
    /// same span for the finer units. Anything else is not guessed.
    static func forMagnitude(_ integerPart: UInt64) -> TimestampUnit? {
        switch integerPart {
        case 100_000_000..<100_000_000_000: .seconds
        case 100_000_000_000..<100_000_000_000_000: .milliseconds
        case 100_000_000_000_000..<100_000_000_000_000_000: .microseconds
        case 100_000_000_000_000_000..<UInt64(10_000_000_000_000_000_000): .nanoseconds
        default: nil
        }
    }
}

/// Why a timestamp could not be read.
enum TimestampProblem: Error {
    case malformed
    case undetectable
    case unitChanged(TimestampUnit)
}

/// Parses timestamps of one file, detecting the unit on the first and holding every later one to it.
struct TimestampReader {
    private(set) var unit: TimestampUnit?

    /// Milliseconds since the epoch (fractions of a millisecond are truncated towards the past).
    mutating func parse(_ field: UnsafeBufferPointer<UInt8>) throws(TimestampProblem) -> Int64 {
        guard !field.isEmpty else { throw .malformed }
        if unit == .iso8601 || (unit == nil && looksLikeISO(field)) {
            guard let ms = parseISO8601Timestamp(field) else { throw unit == nil ? .undetectable : .malformed }
            if unit == nil { unit = .iso8601 }
            return ms
        }
        // Epoch count: digits, optionally a fraction.
        var i = 0
        var integer: UInt64 = 0
        var digits = 0
        while i < field.count, field[i] >= 48, field[i] <= 57 {
            if digits >= 19 { throw .malformed }
            integer = integer * 10 + UInt64(field[i] - 48)
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw unit == nil ? .undetectable : .malformed }
        // Up to 9 fraction digits, kept as nanoseconds of the unit.
        var fractionNanos: UInt64 = 0
        if i < field.count {
            guard field[i] == UInt8(ascii: ".") else { throw .malformed }
            i += 1
            var scale: UInt64 = 100_000_000
            var any = false
            while i < field.count, field[i] >= 48, field[i] <= 57 {
                fractionNanos += UInt64(field[i] - 48) * scale
                scale /= 10
                any = true
                i += 1
            }
            guard any, i == field.count else { throw .malformed }
        }
        guard let detected = TimestampUnit.forMagnitude(integer) else {
            throw unit == nil ? .undetectable : .unitChanged(unit!)
        }
        if let unit, unit != detected { throw .unitChanged(unit) }
        unit = detected
        switch detected {
        case .seconds: return Int64(integer) * 1000 + Int64(fractionNanos / 1_000_000)
        case .milliseconds: return Int64(integer)
        case .microseconds: return Int64(integer / 1000)
        case .nanoseconds: return Int64(integer / 1_000_000)
        case .iso8601: throw .malformed
        }
    }

    private func looksLikeISO(_ field: UnsafeBufferPointer<UInt8>) -> Bool {
        field.count >= 19 && field[4] == UInt8(ascii: "-") && field[7] == UInt8(ascii: "-")
    }
}

/// `YYYY-MM-DD[T| ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]`; without an offset the time is taken as UTC, the
/// project's only time zone (docs/SPEC.md §1).
public func parseISO8601Timestamp(_ f: UnsafeBufferPointer<UInt8>) -> Int64? {
    func num(_ from: Int, _ count: Int) -> Int? {
        guard from + count <= f.count else { return nil }
        var v = 0
        for i in from..<(from + count) {
            let c = f[i]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int(c - 48)
        }
        return v
    }
    guard f.count >= 19,
        let year = num(0, 4), f[4] == UInt8(ascii: "-"), let month = num(5, 2), f[7] == UInt8(ascii: "-"),
        let day = num(8, 2), f[10] == UInt8(ascii: "T") || f[10] == UInt8(ascii: " ") || f[10] == UInt8(ascii: "t"),
        let hour = num(11, 2), f[13] == UInt8(ascii: ":"), let minute = num(14, 2), f[16] == UInt8(ascii: ":"),
        let second = num(17, 2),
        (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    var i = 19
    var millis = 0
    if i < f.count && (f[i] == UInt8(ascii: ".") || f[i] == UInt8(ascii: ",")) {
        i += 1
        var scale = 100
        var any = false
        while i < f.count, f[i] >= 48, f[i] <= 57 {
            millis += Int(f[i] - 48) * scale
            scale /= 10
            any = true
            i += 1
        }
        guard any else { return nil }
    }
    var offsetSeconds = 0
    if i < f.count {
        if f[i] == UInt8(ascii: "Z") || f[i] == UInt8(ascii: "z") {
            i += 1
        } else if f[i] == UInt8(ascii: "+") || f[i] == UInt8(ascii: "-") {
            let sign = f[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2) else { return nil }
            var om = 0
            if i + 3 < f.count && f[i + 3] == UInt8(ascii: ":") {
                guard let m = num(i + 4, 2) else { return nil }
                om = m
                i += 6
            } else if i + 5 <= f.count, let m = num(i + 3, 2) {
                om = m
                i += 5
            } else {
                i += 3
            }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        }
    }
    guard i == f.count else { return nil }
    let days = daysFromCivil(year: year, month: month, day: day)
    let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
    return seconds * 1000 + Int64(millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

/// Direction of a position or a signal.
public enum Direction: Int8, Sendable, Hashable, Codable, CustomStringConvertible {
    case long = 1
    case short = -1

    public var opposite: Direction { self == .long ? .short : .long }
    /// +1 or -1.
    public var sign: Int64 { Int64(rawValue) }
    public var description: String { self == .long ? "long" : "short" }
}

/// The order-flow confirmation of docs/SPEC.md §9.
public enum Confirmation {
    /// Entry or breakout confirmation for `direction` with thresholds stated for a long.
    public static func confirms(
        _ direction: Direction,
        _ f: MinuteFeatures,
        thresholds t: ConfirmationThresholds,
        config: StrategyConfig,
        instrument: Instrument
    ) -> Bool {
        let of = instrument.size(f.orderFlow.signedVolume)
        let qimb = imbalance(f, config)
        let ofOK: Bool
        let qimbOK: Bool
        switch direction {
        case .long:
            ofOK = of > t.ofMin || f.ofNorm > t.ofMinNorm
            qimbOK = qimb.map { $0 > t.qimbMin } ?? false
        case .short:
            ofOK = of < -t.ofMin || f.ofNorm < -t.ofMinNorm
            qimbOK = qimb.map { $0 < -t.qimbMin } ?? false
        }
        return combine(ofOK: ofOK, qimbOK: qimbOK, f, config)
    }

    /// Failed-breakout confirmation for a reversal in `direction` (short after a failed breakout above, long
    /// after a failed breakdown below); the thresholds are stated for the short: `of_1m <= of_fail_min` etc.
    public static func confirmsFailure(
        _ direction: Direction,
        _ f: MinuteFeatures,
        config: StrategyConfig,
        instrument: Instrument
    ) -> Bool {
        let t = config.fail
        let of = instrument.size(f.orderFlow.signedVolume)
        let qimb = imbalance(f, config)
        let ofOK: Bool
        let qimbOK: Bool
        switch direction {
        case .short:
            ofOK = of <= t.ofMin || f.ofNorm <= t.ofMinNorm
            qimbOK = qimb.map { $0 <= t.qimbMin } ?? false
        case .long:
            ofOK = of >= -t.ofMin || f.ofNorm >= -t.ofMinNorm
            qimbOK = qimb.map { $0 >= -t.qimbMin } ?? false
        }
        return combine(ofOK: ofOK, qimbOK: qimbOK, f, config)
    }

    private static func imbalance(_ f: MinuteFeatures, _ config: StrategyConfig) -> Double? {
        switch config.qimbSignal {
        case .ema: f.qimbEma
        case .close: f.quote?.imbalance
        }
    }

    /// `of_ok or qimb_ok`; both when the minute's ambiguous fraction is too high; OF alone without `use_qimb`.
    private static func combine(ofOK: Bool, qimbOK: Bool, _ f: MinuteFeatures, _ config: StrategyConfig) -> Bool {
        guard config.useQimb else { return ofOK }
        if f.ambiguousFraction > config.ambiguousTradeFracMax { return ofOK && qimbOK }
        return ofOK || qimbOK
    }
}

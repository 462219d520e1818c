import Foundation

/// Performance figures of a set of round trips (docs/SPEC.md §12).
public struct TradeStats: Sendable, Hashable {
    public var trades = 0
    public var wins = 0
    public var losses = 0
    public var grossPnL = 0.0
    public var netPnL = 0.0
    public var fees = 0.0
    public var funding = 0.0
    public var grossWins = 0.0
    public var grossLosses = 0.0

    public init(_ trips: [RoundTrip]) {
        for t in trips {
            trades += 1
            grossPnL += t.grossPnL
            netPnL += t.netPnL
            fees += t.fees
            funding += t.funding
            if t.netPnL > 0 {
                wins += 1
                grossWins += t.netPnL
            } else {
                losses += 1
                grossLosses += -t.netPnL
            }
        }
    }

    public var winRate: Double? { trades == 0 ? nil : Double(wins) / Double(trades) }
    public var averageWin: Double? { wins == 0 ? nil : grossWins / Double(wins) }
    public var averageLoss: Double? { losses == 0 ? nil : -grossLosses / Double(losses) }
    /// Net winnings over net losings; nil without losses.
    public var profitFactor: Double? { grossLosses == 0 ? nil : grossWins / grossLosses }

    /// The figures of each setup's round trips (every setup present, with none as zero).
    public static func bySetup(_ trips: [RoundTrip]) -> [Setup: TradeStats] {
        Dictionary(uniqueKeysWithValues: Setup.allCases.map { s in (s, TradeStats(trips.filter { $0.setup == s })) })
    }
}

/// Distribution summary: mean, median, 90th percentile.
public struct Distribution: Sendable, Hashable {
    public var count: Int
    public var mean: Double?
    public var p50: Double?
    public var p90: Double?

    public init(_ values: [Double]) {
        count = values.count
        guard !values.isEmpty else { return }
        let sorted = values.sorted()
        mean = values.reduce(0, +) / Double(values.count)
        p50 = Distribution.quantile(sorted, 0.5)
        p90 = Distribution.quantile(sorted, 0.9)
    }

    /// Nearest-rank quantile of sorted values.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }
}

/// Everything `metrics.json` reports.
public struct BacktestMetrics: Sendable, Hashable {
    public var initialEquity: Double
    public var finalEquity: Double
    public var overall: TradeStats
    public var bySetup: [Setup: TradeStats]
    /// Fees and funding of the whole run (equal to the trades' when everything is closed).
    public var fees: Double
    public var funding: Double
    public var maxDrawdown: Double
    public var maxDrawdownPct: Double
    /// Mean over standard deviation of one-minute equity returns, times sqrt(525600).
    public var sharpe: Double?
    /// Spread paid by taker fills, in bps of mid: `|price - mid| / mid`.
    public var spreadPaidBps: Distribution
    /// `ambiguous_frac_1m` over minutes with trades.
    public var ambiguousFraction: Distribution
    public var minutes: Int
    public var fills: Int

    /// The metrics of a finished run: the trader after `finish()`, its equity curve and fills, and the minutes seen.
    public init(trader: Trader, equity: [EquityRow], fills: [Fill], minutes: [MinuteFeatures]) {
        self.init(
            initialEquity: trader.config.initialEquity, finalEquity: trader.equity, equity: equity,
            trips: trader.roundTrips,
            fills: fills, ambiguous: minutes.filter { $0.volume > 0 }.map(\.ambiguousFraction), fees: trader.feesPaid,
            funding: trader.fundingPaid, instrument: trader.instrument, minuteCount: minutes.count
        )
    }

    /// `finalEquity` is the account after everything was closed at the end of the data (the equity curve's last row,
    /// after that close). `minuteCount`: the minutes decided (nil: one per equity row).
    public init(
        initialEquity: Double, finalEquity: Double, equity: [EquityRow], trips: [RoundTrip], fills: [Fill],
        ambiguous: [Double], fees: Double, funding: Double, instrument: Instrument, minuteCount: Int? = nil
    ) {
        self.init(
            initialEquity: initialEquity, finalEquity: finalEquity, equityValues: equity.map(\.equity), trips: trips,
            fills: fills, ambiguous: ambiguous, fees: fees, funding: funding, instrument: instrument,
            minuteCount: minuteCount)
    }

    /// The same from the equity curve's values alone (a run that wrote its rows out as it went).
    public init(
        initialEquity: Double, finalEquity: Double, equityValues equity: [Double], trips: [RoundTrip], fills: [Fill],
        ambiguous: [Double], fees: Double, funding: Double, instrument: Instrument, minuteCount: Int? = nil
    ) {
        self.initialEquity = initialEquity
        self.finalEquity = finalEquity
        overall = TradeStats(trips)
        bySetup = TradeStats.bySetup(trips)
        self.fees = fees
        self.funding = funding
        var peak = initialEquity
        var ddAbs = 0.0
        var ddPct = 0.0
        var previous = initialEquity
        var returns: [Double] = []
        returns.reserveCapacity(equity.count)
        for value in equity {
            peak = max(peak, value)
            ddAbs = max(ddAbs, peak - value)
            if peak > 0 { ddPct = max(ddPct, (peak - value) / peak) }
            if previous != 0 { returns.append(value / previous - 1) }
            previous = value
        }
        maxDrawdown = ddAbs
        maxDrawdownPct = ddPct
        if returns.count >= 2 {
            let mean = returns.reduce(0, +) / Double(returns.count)
            let variance = returns.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(returns.count - 1)
            sharpe = variance > 0 ? mean / variance.squareRoot() * (525_600.0).squareRoot() : nil
        }
        spreadPaidBps = Distribution(Self.spreadPaidBps(fills))
        ambiguousFraction = Distribution(ambiguous)
        minutes = minuteCount ?? equity.count
        self.fills = fills.count
    }

    /// The spread each taker fill paid, in bps of its reference mid: `|price - mid| / mid`.
    public static func spreadPaidBps(_ fills: [Fill]) -> [Double] {
        fills.compactMap { f in
            guard f.liquidity == .taker, let mid = f.referenceMidTwice, mid > 0 else { return nil }
            return Double(abs(2 * f.price - mid)) / Double(mid) * 10_000
        }
    }
}

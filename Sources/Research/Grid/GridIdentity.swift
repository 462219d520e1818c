public import AgentConfig
import AgentSupport
public import Engine
import Foundation

/// What makes two grid runs parts of one grid: the same grid, the same research configuration and the same data.
/// Each shard stores these texts; `grid merge` refuses shards whose texts differ and names the first difference.
public struct GridIdentity: Sendable, Equatable {
    /// The grid as it was parsed: rank_by and each key's values in order (valid grid YAML).
    public var grid: String
    /// The base configuration's research keys (instrument, value_area, order_flow, signal, sizing, risk, execution,
    /// backtest), one `key: value` a line; the keys of other groups do not change a backtest.
    public var config: String
    /// The events read: counts, first and last times and a hash of every field.
    public var data: String

    public init(grid: String, config: String, data: String) {
        self.grid = grid
        self.config = config
        self.data = data
    }

    public init(spec: GridSpec, base: ResolvedConfig, trades: [TradeEvent], quotes: [QuoteEvent]) {
        grid = spec.canonicalText
        config = Self.researchConfig(base)
        data = Self.dataText(trades: trades, quotes: quotes)
    }

    static let researchGroups: Set<Substring> = [
        "instrument", "value_area", "order_flow", "signal", "sizing", "risk", "execution", "backtest",
    ]

    public static func researchConfig(_ config: ResolvedConfig) -> String {
        ConfigSchema.parameters.filter { researchGroups.contains($0.group) }
            .map { "\($0.key): \(config.values[$0.key]!.description)\n" }.joined()
    }

    /// Counts, time span and a 64-bit hash over every field of every event, in order.
    static func dataText(trades: [TradeEvent], quotes: [QuoteEvent]) -> String {
        var h = DataHasher()
        for t in trades { h.add(t) }
        for q in quotes { h.add(q) }
        return h.text
    }

    /// The first line on which two texts differ, for an error: "line 3: `a` here, `b` there".
    static func firstDifference(_ a: String, _ b: String) -> String {
        let x = a.split(separator: "\n", omittingEmptySubsequences: false)
        let y = b.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? String(x[i]) : "(nothing)"
            let r = i < y.count ? String(y[i]) : "(nothing)"
            if l != r { return "`\(l)` against `\(r)`" }
        }
        return "identical"
    }
}

extension GridSpec {
    /// The grid as parsed, as grid YAML that parses back to the same spec (text values quoted).
    public var canonicalText: String {
        var out = "rank_by: \(rankBy.rawValue)\nparameters:\n"
        for p in parameters {
            let values = p.values.map { v -> String in
                if case .text(let s) = v { return JSONValue.string(s).render(indent: 0) }
                return v.description
            }
            out += "  \(p.key): [\(values.joined(separator: ", "))]\n"
        }
        return out
    }
}

/// What identifies a data set: counts, first and last times, and a 64-bit hash over every field of the trades in
/// order and of the quotes in order (two chains, so that the events may arrive merged or one kind after the other).
struct DataHasher {
    private var tradeHash: UInt64 = 0xcbf2_9ce4_8422_2325
    private var quoteHash: UInt64 = 0x8422_2325_cbf2_9ce4
    private var trades = 0
    private var quotes = 0
    private var tradeSpan: (first: Millis, last: Millis)?
    private var quoteSpan: (first: Millis, last: Millis)?

    @inline(__always) private static func mix(_ h: inout UInt64, _ v: Int64) {
        h = (h ^ UInt64(bitPattern: v)) &* 0x0000_0100_0000_01b3
        h ^= h >> 29
    }

    mutating func add(_ t: TradeEvent) {
        Self.mix(&tradeHash, t.ts)
        Self.mix(&tradeHash, t.price)
        Self.mix(&tradeHash, t.size)
        Self.mix(&tradeHash, Int64(t.side.rawValue))
        trades += 1
        tradeSpan = (tradeSpan?.first ?? t.ts, t.ts)
    }

    mutating func add(_ q: QuoteEvent) {
        Self.mix(&quoteHash, q.ts)
        Self.mix(&quoteHash, q.bidPrice)
        Self.mix(&quoteHash, q.bidSize)
        Self.mix(&quoteHash, q.askPrice)
        Self.mix(&quoteHash, q.askSize)
        quotes += 1
        quoteSpan = (quoteSpan?.first ?? q.ts, q.ts)
    }

    mutating func add(_ e: MarketEvent) {
        switch e {
        case .trade(let t): add(t)
        case .quote(let q): add(q)
        }
    }

    var text: String {
        var h = tradeHash
        Self.mix(&h, Int64(bitPattern: quoteHash))
        func span(_ s: (first: Millis, last: Millis)?) -> String {
            guard let s else { return "none" }
            return "\(isoTime(s.first, milliseconds: true)) to \(isoTime(s.last, milliseconds: true))"
        }
        return
            "trades \(trades) (\(span(tradeSpan))), quotes \(quotes) (\(span(quoteSpan))), hash \(String(h, radix: 16))"
    }
}

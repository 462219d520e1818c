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

    static func researchConfig(_ config: ResolvedConfig) -> String {
        ConfigSchema.parameters.filter { researchGroups.contains($0.group) }
            .map { "\($0.key): \(config.values[$0.key]!.description)\n" }.joined()
    }

    /// Counts, time span and a 64-bit hash over every field of every event, in order.
    static func dataText(trades: [TradeEvent], quotes: [QuoteEvent]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        @inline(__always) func mix(_ v: Int64) {
            h = (h ^ UInt64(bitPattern: v)) &* 0x0000_0100_0000_01b3
            h ^= h >> 29
        }
        for t in trades {
            mix(t.ts)
            mix(t.price)
            mix(t.size)
            mix(Int64(t.side.rawValue))
        }
        mix(-1)
        for q in quotes {
            mix(q.ts)
            mix(q.bidPrice)
            mix(q.bidSize)
            mix(q.askPrice)
            mix(q.askSize)
        }
        func span(_ first: Millis?, _ last: Millis?) -> String {
            guard let first, let last else { return "none" }
            return "\(isoTime(first, milliseconds: true)) to \(isoTime(last, milliseconds: true))"
        }
        return "trades \(trades.count) (\(span(trades.first?.ts, trades.last?.ts))), quotes \(quotes.count) "
            + "(\(span(quotes.first?.ts, quotes.last?.ts))), hash \(String(h, radix: 16))"
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

import AgentConfig
import Engine

/// BTCUSDT rules: tick 0.1, step 0.001.
let btc = Instrument.btcusdt

/// Price text → ticks, exactly.
func px(_ text: String) -> Ticks { btc.ticks(ScaledDecimal(text)!)! }
/// Size text → lots, exactly.
func sz(_ text: String) -> Lots { btc.lots(ScaledDecimal(text)!)! }

func trade(_ ts: Millis, _ price: String, _ size: String, _ side: TakerSide = .unknown) -> MarketEvent {
    .trade(TradeEvent(ts: ts, price: px(price), size: sz(size), side: side))
}

func quote(_ ts: Millis, bid: String, _ bidSize: String, ask: String, _ askSize: String) -> MarketEvent {
    .quote(QuoteEvent(ts: ts, bidPrice: px(bid), bidSize: sz(bidSize), askPrice: px(ask), askSize: sz(askSize)))
}

/// Runs events through a pipeline and returns every closed minute, the last one included.
func run(_ events: [MarketEvent], config: FeatureConfig = FeatureConfig.defaults) -> [MinuteFeatures] {
    var p = FeaturePipeline(config: config)
    for e in events { p.process(e) }
    p.finish()
    return p.takeClosed()
}

/// A base minute well inside 2026 (a multiple of 15 minutes, so rebucketing is on schedule there).
let t0: Millis = 1_767_225_600_000

func isClose(_ a: Double, _ b: Double, tolerance: Double = 1e-12) -> Bool { abs(a - b) <= tolerance }

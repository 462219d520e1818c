import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Exchange
import Foundation
import MarketData
import Research
import Simulator

/// Set by SIGINT/SIGTERM; the simulator stops.
nonisolated(unsafe) private var simStop: sig_atomic_t = 0

/// `auction-agent sim-exchange`: the Bybit-compatible venue on loopback.
struct SimExchangeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-exchange",
        abstract: "Run the Bybit v5-compatible simulated venue on 127.0.0.1 (REST and WebSocket).",
        discussion: """
            Serves the REST endpoints of docs/BYBIT.md on http://127.0.0.1:PORT, and the public (/v5/public/linear: \
            publicTrade, orderbook.1) and private (/v5/private: auth, order, execution, position, wallet) \
            WebSockets on the same port, with signatures and the recv window \
            checked as the exchange does (key sim-key, secret sim-secret), rate-limit headers, a matching engine \
            against its own L1, a position, a wallet, fees and funding. The market comes from the generator (--seed, \
            --speed: 60 plays an hour a minute) or from a recording (--replay-trades/--replay-quotes), with \
            --warm-minutes of history played at once so indicators have data. Faults switch at run time:
              curl -X POST http://127.0.0.1:PORT/sim/faults -d '{"failNextRetCode":10006,"failNextCount":3}'
            (fields: failNextRetCode/failNextCount, failNextHTTPStatus/failNextHTTPCount, replyDelayMs, \
            dropRepliesCount, dropCreateRepliesCount, rejectOrders, rejectTradingStop, duplicateExecutions, \
            clockSkewMs, stallWebSockets, dropWebSockets, dropPrivateWebSockets, cutPrivateStreams, \
            stallPrivateStreams, failPrivateAuth, thinBookLots/thinBookCount, holdCreateRepliesCount/holdReplyMs: \
            the order is made at once, its reply waits up to holdReplyMs (15000) or until POST /sim/release); \
            POST /sim/restart makes the next \
            book message say u=1; POST /sim/adl {"qty":"0.1","execType":"AdlTrade"|"BustTrade"} makes the exchange \
            close part of the position; POST /sim/account {"hedgeMode":true} switches the position mode and \
            {"marginMode":"ISOLATED_MARGIN"} the margin mode (GET /v5/account/info; --margin-mode at start). GET \
            /sim/state shows the venue. The venue does what Bybit documents: the position's stop is a conditional \
            order (listed, pushed, triggered), trading-stop needs tpslMode and answers 34040 when unchanged, market \
            orders stop at a slippage band and end Cancelled with their fills, lists are paged (docs/EXCHANGE.md).
            Stops on Ctrl-C or SIGTERM.
            """
    )

    @Option(help: "Port on 127.0.0.1 (0: any free port, printed at start).")
    var port: UInt16 = 18_080

    @Option(
        help: ArgumentHelp(
            "Write the bound port to this file once serving (for scripts and tests with --port 0).", valueName: "file"))
    var portFile: String?

    @Option(
        help: ArgumentHelp(
            "The account's margin mode: REGULAR_MARGIN (cross), ISOLATED_MARGIN or PORTFOLIO_MARGIN.", valueName: "mode"
        ))
    var marginMode = "REGULAR_MARGIN"

    @Option(help: "Market generator seed.")
    var seed: UInt64 = 1

    @Option(help: "Market time per wall-clock time (1 = real time).")
    var speed: Double = 1

    @Option(help: "Minutes of market played at once before pacing starts.")
    var warmMinutes: Int = 240

    @Option(help: ArgumentHelp("Replay these trades instead of generating (needs --replay-quotes).", valueName: "file"))
    var replayTrades: String?

    @Option(help: ArgumentHelp("Replay these quotes.", valueName: "file"))
    var replayQuotes: String?

    func validate() throws {
        guard speed > 0 else { throw ValidationError("--speed must be positive") }
        guard ["REGULAR_MARGIN", "ISOLATED_MARGIN", "PORTFOLIO_MARGIN"].contains(marginMode) else {
            throw ValidationError("--margin-mode must be REGULAR_MARGIN, ISOLATED_MARGIN or PORTFOLIO_MARGIN")
        }
        guard (replayTrades == nil) == (replayQuotes == nil) else {
            throw ValidationError("give both --replay-trades and --replay-quotes")
        }
    }

    func run() throws {
        // A parent may start us with SIGTERM/SIGINT blocked (Foundation's Process does); threads inherit the mask,
        // so unblock before any is created, or a stop request would stay pending forever.
        unblockStopSignals()
        var venueConfig = SimVenueConfig()
        venueConfig.marginMode = marginMode
        let venue = SimVenue(config: venueConfig)
        let source: any SimEventSource
        if let replayTrades, let replayQuotes {
            let (t, _) = try readTrades(path: replayTrades, instrument: venue.config.instrument)
            let (q, _) = try readQuotes(path: replayQuotes, instrument: venue.config.instrument)
            source = RecordedMarket(trades: t, quotes: q)
        } else {
            var market = MarketGeneratorConfig()
            market.seed = seed
            market.hours = 24 * 365
            market.startMs = minuteStart(of: wallClockMillis()) - Int64(warmMinutes) * 60_000
            source = GeneratedMarket(config: market)
        }
        let driver = SimMarketDriver(venue: venue, source: source, speed: speed)
        var first = source
        let start = first.peek()?.ts ?? 0
        driver.prefill(until: start + Int64(warmMinutes) * 60_000)
        let server = venue.makeServer()
        try server.start(port: port)
        driver.start()
        let banner =
            "sim-exchange: REST on http://127.0.0.1:\(server.port), public WebSocket ws://127.0.0.1:\(server.port)/v5/public/linear, "
            + "private ws://127.0.0.1:\(server.port)/v5/private (key sim-key, secret sim-secret), speed \(formatNumber(speed))x\n"
        FileHandle.standardOutput.write(Data(banner.utf8))
        if let portFile { try writeAtomically(Array("\(server.port)\n".utf8), to: portFile) }
        signal(SIGINT) { _ in simStop = 1 }
        signal(SIGTERM) { _ in simStop = 1 }
        while simStop == 0 { usleep(100_000) }
        driver.stop()
        server.stop()
    }
}

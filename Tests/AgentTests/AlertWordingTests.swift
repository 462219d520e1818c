import Engine
import Foundation
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

/// Every alert the agent can raise, rendered as the operator reads it (in `atctl alerts`, the log, the webhook, the
/// dashboard), and held to the same rules: no `nil` or `Optional(`, no "never", no raw floating point, durations in
/// whole seconds with their unit, quantities with theirs, money in cents.
@Suite(.tags(.unit)) struct AlertWordingTests {
    let shadow = AlertWording(instrument: .btcusdt, isLive: false)
    let live = AlertWording(instrument: .btcusdt, isLive: true)
    let minute: Millis = 1_767_225_600_000 + 17 * 60_000

    /// Each situation that raises an alert, in both modes where the mode changes the words.
    var rendered: [Alert] {
        var all: [Alert] = []
        for w in [shadow, live] {
            all += [
                w.staleFeed(secondsSinceQuote: nil, secondsSinceStart: 12, limitSeconds: 10),
                w.staleFeed(secondsSinceQuote: 14, secondsSinceStart: 300, limitSeconds: 10),
                w.reconnectStorm(attempts: 8),
                w.warmStartFailed("HTTP 503"),
                w.highAmbiguousFraction(0.4123456, limit: 0.3, minute: minute),
                w.invalidValueArea(minute: minute),
                w.engine(
                    .killSwitch(ts: minute, dayPnL: -312.456789, maxDailyLossPct: 0.03, dayStartEquity: 10_000.123)),
                w.engine(.leverageCapHit(ts: minute, setup: .breakIn, direction: .long, maxLeverage: 10)),
                w.engine(.dailyLossLimit(ts: minute, realized: -512.345678, limit: 500)),
                w.engine(.dailyLossLimitLifted(ts: minute + 86_400_000)),
                w.killSwitchReset(uid: 1000, equity: 9_687.666666),
                w.walletMismatch(agentEquity: 10_250.555, wallet: 9_999.994, sizedFrom: 9_999.994),
                w.venueUnreachableAtStart(seconds: 31, error: "connection refused"),
                w.venueAnswersAgain(position: 0),
                w.reconciliationMismatch([
                    w.positionProblem(agent: 125, venue: 0), w.unknownOrdersProblem(["at-e-7-1", "1f2e"]),
                ]),
                w.positionsDiffer(agent: -40, venue: 0),
                w.executionsDisagree(held: 125, executionsSum: 100),
                w.exchangeFlatBooksWereNot(qty: 125, direction: .short, lastMid: 642_503),
                w.foreignExecution("Trade Buy 0.01 at 64250.5", orderId: "1f2e"),
                w.closedMoreThanHeld(closed: 200, held: 125),
                w.closedByExchange(.adl, qty: 50, execution: "AdlTrade Sell 0.05 at 64000"),
                w.closedByExchange(.liquidation, qty: 125, execution: "BustTrade Sell 0.125 at 60000"),
                w.closedByExchange(.delivery, qty: 125, execution: "Delivery Sell 0.125 at 64000"),
                w.stopRefused(stop: 639_005, attempt: 1, reason: "retCode 10001: stop beyond the mark"),
                w.stopRefused(stop: nil, attempt: 5, reason: "retCode 10001"),
                w.orderRejected(id: "at-e-7-1", isExit: false, reason: "retCode 110007: insufficient balance"),
                w.orderRejected(id: "at-x-7-2", isExit: true, reason: "retCode 110017"),
                w.fillDiverges(
                    id: "at-e-7-1", paperQty: 125, paperPrice: 642_500, testnetQty: 120, testnetPriceTwice: 1_285_011,
                    toleranceTicks: 2),
                w.unprotectedPosition(position: 125, seconds: 30, limitSeconds: 30),
                w.privateStream(seconds: 10, state: "connecting (attempt 3)"),
                w.restRefused("retCode 10006: rate limited (403)"),
                w.flattenFailed(steps: ["venue: cancelled 1 order(s)", "venue: not flat after close attempt 3"]),
                w.flattenFailed(steps: []),
                w.databaseUnwritable("SQLite error 13: database or disk is full", rows: 42),
                w.databaseJournalFull(rows: 50_000, minutes: 1_440),
                w.databaseRecovered(rows: 42, seconds: 615, droppedMinutes: 0),
                w.databaseRecovered(rows: 50_000, seconds: 90_000, droppedMinutes: 12),
                w.diskSpaceLow(freeBytes: 1_500_000_000, limitMB: 2048, directory: "/var/lib/auction-agent/live"),
                w.exchangeUnknownValue(field: "orderStatus", value: "Suspended", of: "order at-e-7-1"),
            ]
        }
        return all
    }

    @Test func everyKindIsRendered() {
        let kinds = Set(rendered.map(\.kind))
        #expect(
            kinds == Set(AlertKind.allCases),
            "not rendered: \(Set(AlertKind.allCases).subtracting(kinds).map(\.rawValue))")
    }

    @Test func everyMessageReadsAsWords() {
        for a in rendered {
            let m = a.message
            #expect(!m.isEmpty)
            for bad in ["nil", "Optional(", "never", "nan", "inf ", "Infinity", "\\(", "  "] {
                #expect(!m.contains(bad), "\(a.kind.rawValue): \(m)")
            }
            // No raw floating point: at most the quantity step's three decimals anywhere, cents for money.
            #expect(m.firstMatch(of: /\d\.\d{4,}/) == nil, "\(a.kind.rawValue): \(m)")
            #expect(m.firstMatch(of: /\d\.\d{3,} USDT/) == nil, "\(a.kind.rawValue): \(m)")
            // Durations: whole seconds, with the unit; "limit" always names its unit too.
            #expect(m.firstMatch(of: /\d\.\d+ s\b/) == nil, "\(a.kind.rawValue): \(m)")
            #expect(m.firstMatch(of: /limit \d+\)/) == nil, "\(a.kind.rawValue): \(m)")
            // Quantities carry their unit: a number right after these words is a size.
            #expect(
                m.firstMatch(
                    of: /(?:position|held|closed|holds|up to|agent|paper|testnet|exchange) -?[\d.]+(?![\d.]| BTC)/)
                    == nil,
                "\(a.kind.rawValue): a size without its unit in \(m)")
            // Lower case, like the log's other messages.
            #expect(m.first?.isLowercase == true || m.first?.isNumber == true, "\(a.kind.rawValue): \(m)")
        }
    }

    /// The venue is named as the mode knows it, and the mode decides what a disagreement is.
    @Test func theModeNamesTheVenueAndTheSeverity() {
        #expect(
            shadow.positionsDiffer(agent: -40, venue: 0)
                == Alert(
                    kind: .shadowDivergence, severity: .warning, message: "position: paper -0.04 BTC, testnet 0 BTC"))
        #expect(
            live.positionsDiffer(agent: -40, venue: 0)
                == Alert(
                    kind: .positionMismatch, severity: .critical,
                    message: "position: agent -0.04 BTC, exchange 0 BTC; trading halted, nothing changed"))
        #expect(
            shadow.flattenFailed(steps: ["venue: cancelled 1 order(s)", "venue: not flat after close attempt 3"])
                .message
                == "the testnet position could not be confirmed flat: cancelled 1 order(s); not flat after close attempt 3"
        )
        #expect(live.flattenFailed(steps: []).message == "the exchange position could not be confirmed flat: no answer")
        #expect(
            live.stopRefused(stop: 639_005, attempt: 5, reason: "retCode 10001").message
                == "the exchange refused the protective stop at 63900.5 (attempt 5, retrying): retCode 10001")
        #expect(
            shadow.stopRefused(stop: nil, attempt: 1, reason: "retCode 10001")
                == Alert(
                    kind: .shadowDivergence, severity: .warning,
                    message: "the testnet refused removing the protective stop: retCode 10001"))
        #expect(live.orderRejected(id: "at-x-7-2", isExit: true, reason: "retCode 110017").severity == .critical)
        #expect(live.orderRejected(id: "at-e-7-1", isExit: false, reason: "retCode 110007").severity == .warning)
    }

    /// The exact words of the alerts whose numbers are computed.
    @Test func computedNumbersAreRounded() {
        #expect(
            live.staleFeed(secondsSinceQuote: nil, secondsSinceStart: 12, limitSeconds: 10).message
                == "no quote received yet, 12 s after start (limit 10 s); entries vetoed")
        #expect(
            live.staleFeed(secondsSinceQuote: 14, secondsSinceStart: 300, limitSeconds: 10).message
                == "no quote for 14 s (limit 10 s); entries vetoed")
        #expect(
            live.highAmbiguousFraction(0.4123456, limit: 0.3, minute: minute).message
                == "41.2% of the minute's volume had an ambiguous side (limit 30%) at 2026-01-01T00:17Z")
        #expect(
            live.engine(.killSwitch(ts: minute, dayPnL: -312.456789, maxDailyLossPct: 0.03, dayStartEquity: 10_000.123))
                == Alert(
                    kind: .killSwitch, severity: .critical,
                    message:
                        "day P&L -312.46 USDT reached the daily loss limit of -300 USDT (3% of 10000.12 USDT); position closed, trading halted"
                ))
        #expect(
            live.killSwitchReset(uid: 1000, equity: 9_687.666666).message
                == "kill switch reset by uid 1000; the day's loss is now measured from equity 9687.67 USDT")
        #expect(
            live.walletMismatch(agentEquity: 10_250.555, wallet: 9_999.994, sizedFrom: 9_999.994).message
                == "agent equity 10250.56 USDT is above the exchange wallet's 9999.99 USDT; entries are sized from 9999.99 USDT"
        )
        #expect(
            shadow.fillDiverges(
                id: "at-e-7-1", paperQty: 125, paperPrice: 642_500, testnetQty: 120, testnetPriceTwice: 1_285_011,
                toleranceTicks: 2
            ).message
                == "at-e-7-1: paper 0.125 BTC @ 64250, testnet 0.12 BTC @ 64250.55 (tolerance 2 ticks)")
    }

    /// docs/OPERATIONS.md lists every kind with what it means and its runbook.
    @Test func everyKindIsDocumented() throws {
        let doc = try String(contentsOf: packageRoot.appending(path: "docs/OPERATIONS.md"), encoding: .utf8)
        for kind in AlertKind.allCases {
            #expect(doc.contains("| `\(kind.rawValue)` |"), "docs/OPERATIONS.md has no row for \(kind.rawValue)")
        }
    }
}

import AgentConfig
import AgentSupport
import Engine

/// Every kind of alert the agent raises. The raw value is the string stored in the `alerts` table, logged as
/// `alert.kind`, listed by `atctl alerts`, counted in `auction_alerts_total{kind}` and sent to the webhook; those
/// strings never change. docs/OPERATIONS.md ("Alerts") says what each means and which runbook answers it.
enum AlertKind: String, CaseIterable, Sendable {
    case staleFeed = "stale_feed"
    case reconnectStorm = "reconnect_storm"
    case warmStartFailed = "warm_start_failed"
    case highAmbiguousFraction = "high_ambiguous_fraction"
    case invalidValueArea = "invalid_value_area"
    case killSwitch = "kill_switch"
    case killSwitchReset = "kill_switch_reset"
    case dailyLossLimit = "daily_loss_limit"
    case dailyLossLimitLifted = "daily_loss_limit_lifted"
    case leverageCapHit = "leverage_cap_hit"
    case venueUnreachable = "venue_unreachable"
    case positionMismatch = "position_mismatch"
    case shadowDivergence = "shadow_divergence"
    case stopRefused = "stop_refused"
    case orderRejected = "order_rejected"
    case adl
    case liquidation
    case delivery
    case walletMismatch = "wallet_mismatch"
    case unprotectedPosition = "unprotected_position"
    case privateStream = "private_stream"
    case rateLimitedOrBanned = "rate_limited_or_banned"
    case flattenFailed = "flatten_failed"
    case databaseUnwritable = "database_unwritable"
    case databaseRecovered = "database_recovered"
    case diskSpaceLow = "disk_space_low"
    case exchangeUnknownValue = "exchange_unknown_value"

    init(_ kind: EngineAlert.Kind) {
        switch kind {
        case .killSwitch: self = .killSwitch
        case .leverageCapHit: self = .leverageCapHit
        case .dailyLossLimit: self = .dailyLossLimit
        case .dailyLossLimitLifted: self = .dailyLossLimitLifted
        }
    }
}

/// One alert as the operator reads it.
struct Alert: Sendable, Equatable {
    enum Severity: String, Sendable { case info, warning, critical }

    var kind: AlertKind
    var severity: Severity
    var message: String
}

/// The wording of every alert, in one place, so that one test can render each and read it as the operator would
/// (AlertWordingTests): quantities and prices in the instrument's steps, money in cents, durations in whole seconds
/// with their unit, the venue named as the mode knows it ("testnet" in shadow, "exchange" in live).
struct AlertWording: Sendable {
    var instrument: Instrument
    /// Live mode: the venue is the exchange and its disagreements halt; shadow: the testnet and they are divergences.
    var isLive: Bool

    var venue: String { isLive ? "exchange" : "testnet" }

    /// The unit of a quantity: the symbol's base asset (`BTC` of `BTCUSDT`).
    private var base: String {
        for quote in ["USDT", "USDC", "USD"]
        where instrument.symbol.hasSuffix(quote) && instrument.symbol.count > quote.count {
            return " " + instrument.symbol.dropLast(quote.count)
        }
        return " " + instrument.symbol
    }

    // MARK: Market data

    /// No quote for `stale_feed_seconds`: `secondsSinceQuote` nil when none has come since the start.
    func staleFeed(secondsSinceQuote: Int64?, secondsSinceStart: Int64, limitSeconds: Int) -> Alert {
        let limit = "limit \(limitSeconds) s"
        let what =
            secondsSinceQuote.map { "no quote for \($0) s" }
            ?? "no quote received yet, \(secondsSinceStart) s after start"
        return Alert(kind: .staleFeed, severity: .warning, message: "\(what) (\(limit)); entries vetoed")
    }

    func reconnectStorm(attempts: Int) -> Alert {
        Alert(
            kind: .reconnectStorm, severity: .warning,
            message: "public stream: \(attempts) connection attempts in a row")
    }

    func warmStartFailed(_ error: String) -> Alert {
        Alert(
            kind: .warmStartFailed, severity: .warning,
            message: "the warm start could not read the exchange's history (\(error)); the window warms from live data")
    }

    func highAmbiguousFraction(_ share: Double, limit: Double, minute: Millis) -> Alert {
        Alert(
            kind: .highAmbiguousFraction, severity: .warning,
            message:
                "\(percent(share)) of the minute's volume had an ambiguous side (limit \(percent(limit))) at \(isoTime(minute))"
        )
    }

    func invalidValueArea(minute: Millis) -> Alert {
        Alert(
            kind: .invalidValueArea, severity: .warning,
            message:
                "value area invalid at \(isoTime(minute)): too few bins with volume; no entries until it is valid again"
        )
    }

    // MARK: Storage

    /// The database refused a commit: the step's records wait in the journal (`rows` of them), entries are vetoed.
    func databaseUnwritable(_ error: String, rows: Int) -> Alert {
        Alert(
            kind: .databaseUnwritable, severity: .critical,
            message:
                "the database cannot be written (\(error)); \(rows) records held in memory and retried, new entries "
                + "vetoed, exits and stops still sent (runbooks/storage-full.md)")
    }

    /// The journal reached its bound: the agent flattens and halts rather than trade without records.
    func databaseJournalFull(rows: Int, minutes: Int64) -> Alert {
        Alert(
            kind: .databaseUnwritable, severity: .critical,
            message:
                "the database has refused writes for \(minutes) min and \(rows) records wait in memory (the bound); "
                + "flattening and halting; market records from now on are dropped and recorded as a gap")
    }

    /// The journal is flushed: every held record is in the database.
    func databaseRecovered(rows: Int, seconds: Int64, droppedMinutes: Int) -> Alert {
        Alert(
            kind: .databaseRecovered, severity: .info,
            message:
                "the database takes writes again after \(seconds) s; \(rows) held records written"
                + (droppedMinutes > 0
                    ? ", \(droppedMinutes) minutes of market records were dropped (recorded as a gap)" : "")
                + "; entries allowed again")
    }

    /// Free space on the state directory's disk under `agent.min_free_disk_mb`.
    /// A value of one of Bybit's enumerations (`orderStatus`, `execType`, ...) this agent does not know.
    func exchangeUnknownValue(field: String, value: String, of what: String) -> Alert {
        Alert(
            kind: .exchangeUnknownValue, severity: .warning,
            message:
                "the \(venue) sent \(field) \"\(value)\" (\(what)), a value this agent does not know: an order in it is "
                + "taken as neither open nor over and read again, an execution as unexplained; see docs/BYBIT.md and "
                + "whether a newer agent knows it")
    }

    func diskSpaceLow(freeBytes: Int64, limitMB: Int, directory: String) -> Alert {
        Alert(
            kind: .diskSpaceLow, severity: .warning,
            message:
                "\(freeBytes / 1_048_576) MB free on the disk of \(directory) (warning under \(limitMB) MB); free space "
                + "before the database fills it (runbooks/storage-full.md)")
    }

    // MARK: Risk

    /// The Engine's own alerts (kill switch, leverage cap), worded by the Engine.
    func engine(_ a: EngineAlert) -> Alert {
        let severity: Alert.Severity =
            switch a.kind {
            case .killSwitch, .dailyLossLimit: .critical
            case .leverageCapHit: .warning
            case .dailyLossLimitLifted: .info
            }
        return Alert(kind: AlertKind(a.kind), severity: severity, message: a.message)
    }

    func killSwitchReset(uid: UInt32, equity: Double) -> Alert {
        Alert(
            kind: .killSwitchReset, severity: .info,
            message: "kill switch reset by uid \(uid); the day's loss is now measured from equity \(money(equity)) USDT"
        )
    }

    func walletMismatch(agentEquity: Double, wallet: Double, sizedFrom: Double) -> Alert {
        Alert(
            kind: .walletMismatch, severity: .warning,
            message: "agent equity \(money(agentEquity)) USDT is above the exchange wallet's \(money(wallet)) USDT; "
                + "entries are sized from \(money(sizedFrom)) USDT")
    }

    // MARK: Reconciliation

    func venueUnreachableAtStart(seconds: Int64, error: String) -> Alert {
        Alert(
            kind: .venueUnreachable, severity: .critical,
            message:
                "reconciliation impossible, \(venue) unreachable for \(seconds) s at start: \(error); trading halted until it answers"
        )
    }

    func venueAnswersAgain(position: Lots) -> Alert {
        Alert(
            kind: .venueUnreachable, severity: .info,
            message:
                "the \(venue) answers again and agrees (position \(size(position))\(base)); `atctl resume` to trade")
    }

    /// Problems found reconciling with the venue (`positionProblem`, `unknownOrdersProblem`).
    func reconciliationMismatch(_ problems: [String]) -> Alert {
        Alert(
            kind: .positionMismatch, severity: .critical,
            message: "reconciliation: \(problems.joined(separator: "; ")); trading halted, nothing was changed")
    }

    /// A reconciliation problem: the positions differ (also the halt's reason).
    func positionProblem(agent: Lots, venue venueQty: Lots) -> String {
        "position: agent \(size(agent))\(base), \(venue) \(size(venueQty))\(base)"
    }

    /// A reconciliation problem: open orders on the venue that are neither the agent's nor the position's own.
    func unknownOrdersProblem(_ ids: [String]) -> String {
        "\(venue) orders unknown to the agent: \(ids.joined(separator: ", "))"
    }

    /// The venue's position differs from the agent's with nothing in flight.
    func positionsDiffer(agent: Lots, venue venueQty: Lots) -> Alert {
        isLive
            ? Alert(
                kind: .positionMismatch, severity: .critical,
                message:
                    "position: agent \(size(agent))\(base), exchange \(size(venueQty))\(base); trading halted, nothing changed"
            )
            : Alert(
                kind: .shadowDivergence, severity: .warning,
                message: "position: paper \(size(agent))\(base), testnet \(size(venueQty))\(base)")
    }

    /// Twice in a row, the venue's position is not what its executions add up to.
    func executionsDisagree(held: Lots, executionsSum: Lots) -> Alert {
        let text = "the \(venue) holds \(size(held))\(base), its executions add up to \(size(executionsSum))\(base)"
        return isLive
            ? Alert(kind: .positionMismatch, severity: .critical, message: "\(text); trading halted, nothing changed")
            : Alert(kind: .shadowDivergence, severity: .warning, message: text)
    }

    /// Live flatten: the exchange is confirmed flat while the books still held a position, now booked closed.
    func exchangeFlatBooksWereNot(qty: Lots, direction: Direction, lastMid: Ticks) -> Alert {
        Alert(
            kind: .positionMismatch, severity: .critical,
            message: "the exchange is flat but the agent's books held \(size(qty))\(base) \(direction); "
                + "booked closed at \(price(lastMid)) (last mid)")
    }

    /// An execution that is neither the agent's order nor the position's own stop: `execution` describes it.
    func foreignExecution(_ execution: String, orderId: String) -> Alert {
        Alert(
            kind: .positionMismatch, severity: .critical,
            message: "an execution the agent did not order: \(execution) (order \(orderId)); trading halted")
    }

    /// The exchange closed more than the agent held.
    func closedMoreThanHeld(closed: Lots, held: Lots) -> Alert {
        Alert(
            kind: .positionMismatch, severity: .critical,
            message:
                "the exchange closed \(size(closed))\(base) but the agent held \(size(held))\(base); trading halted")
    }

    /// Auto-deleveraging, liquidation or delivery closed (part of) the position; `execution` describes it.
    func closedByExchange(_ cause: HaltCause, qty: Lots, execution: String) -> Alert {
        let kind: AlertKind
        switch cause {
        case .adl: kind = .adl
        case .liquidation: kind = .liquidation
        default: kind = .delivery
        }
        return Alert(
            kind: kind, severity: .critical,
            message:
                "the exchange closed \(size(qty))\(base) of the position itself (\(execution)); booked as reported, "
                + "entries halted until `atctl resume`")
    }

    // MARK: Orders and the stop

    /// The venue refused the position's stop (`stop` nil: removing it). Live retries and alerts on the first and
    /// every fifth attempt; shadow reports the first as a divergence.
    func stopRefused(stop: Ticks?, attempt: Int, reason: String) -> Alert {
        let what = stop.map { "the protective stop at \(price($0))" } ?? "removing the protective stop"
        return isLive
            ? Alert(
                kind: .stopRefused, severity: .critical,
                message: "the exchange refused \(what) (attempt \(attempt), retrying): \(reason)")
            : Alert(kind: .shadowDivergence, severity: .warning, message: "the testnet refused \(what): \(reason)")
    }

    /// The venue rejected an order; a rejected exit leaves the position to the exchange-held stop.
    func orderRejected(id: String, isExit: Bool, reason: String) -> Alert {
        guard isLive else {
            return Alert(kind: .shadowDivergence, severity: .warning, message: "testnet rejected \(id): \(reason)")
        }
        return Alert(
            kind: .orderRejected, severity: isExit ? .critical : .warning,
            message: "the exchange rejected \(id)"
                + (isExit ? " (an exit; the position stays under the exchange-held stop, if any)" : "") + ": \(reason)")
    }

    /// Shadow: the testnet filled an order differently from the paper venue.
    func fillDiverges(
        id: String, paperQty: Lots, paperPrice: Ticks, testnetQty: Lots, testnetPriceTwice: HalfTicks,
        toleranceTicks: Int
    ) -> Alert {
        Alert(
            kind: .shadowDivergence, severity: .warning,
            message:
                "\(id): paper \(size(paperQty))\(base) @ \(price(paperPrice)), testnet \(size(testnetQty))\(base) @ "
                + "\(instrument.halfTickText(testnetPriceTwice)) (tolerance \(toleranceTicks) ticks)")
    }

    func unprotectedPosition(position: Lots, seconds: Int64, limitSeconds: Int) -> Alert {
        Alert(
            kind: .unprotectedPosition, severity: .critical,
            message: "the exchange has held the position \(size(position))\(base) without a stop for \(seconds) s "
                + "(limit \(limitSeconds) s); flattening")
    }

    // MARK: The venue's connections

    func privateStream(seconds: Int64, state: String) -> Alert {
        Alert(
            kind: .privateStream, severity: isLive ? .critical : .warning,
            message:
                "\(venue) private stream not authenticated for \(seconds) s (\(state)); entries vetoed, REST re-reads keep the books"
        )
    }

    /// Rate limited, banned or refused by the venue's REST API (the client's own words).
    func restRefused(_ reason: String) -> Alert {
        Alert(kind: .rateLimitedOrBanned, severity: .critical, message: "\(venue) REST: \(reason)")
    }

    /// The flatten ended with the agent flat but the venue not confirmed flat: `steps` are the venue's answers
    /// (the flatten's `venue: …` steps).
    func flattenFailed(steps: [String]) -> Alert {
        let said = steps.map { $0.hasPrefix("venue: ") ? String($0.dropFirst(7)) : $0 }
        return Alert(
            kind: .flattenFailed, severity: .critical,
            message: "the \(venue) position could not be confirmed flat: "
                + (said.isEmpty ? "no answer" : said.joined(separator: "; ")))
    }

    // MARK: Numbers

    private func size(_ lots: Lots) -> String { instrument.sizeText(lots) }
    private func price(_ ticks: Ticks) -> String { instrument.priceText(ticks) }
    private func percent(_ share: Double) -> String { formatNumber((share * 1000).rounded() / 10) + "%" }
}

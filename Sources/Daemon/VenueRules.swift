import AgentConfig
import AgentSupport
package import Engine
package import Exchange

/// What the exchange says about the instrument and the account, against what the configuration says
/// (docs/EXCHANGE.md): the exchange is the truth, so a difference refuses to trade rather than trading on guesses.
package enum VenueRules {
    /// Each rule where the configuration disagrees with instruments-info, naming both values.
    package static func differences(_ info: InstrumentInfo, _ instrument: Instrument) -> [String] {
        var out: [String] = []
        if info.symbol != instrument.symbol {
            out.append("symbol: exchange \(info.symbol), configuration \(instrument.symbol)")
        }
        if info.tickSize != instrument.tick {
            out.append("instrument.tick_size: exchange \(info.tickSize), configuration \(instrument.tick)")
        }
        if info.qtyStep != instrument.qtyStep {
            out.append("instrument.qty_step: exchange \(info.qtyStep), configuration \(instrument.qtyStep)")
        }
        if info.minOrderQty != instrument.minQty {
            out.append("instrument.min_qty: exchange \(info.minOrderQty), configuration \(instrument.minQty)")
        }
        if info.status != "Trading" { out.append("status: \(info.symbol) is \(info.status), not Trading") }
        return out
    }

    /// Why the account's position mode does not fit the agent (one-way, `positionIdx` 0), or nil.
    package static func positionModeProblem(_ positions: [PositionInfo]) -> String? {
        let hedge = positions.filter { $0.positionIdx != 0 }
        guard !hedge.isEmpty else { return nil }
        return
            "the account is in hedge mode (positionIdx \(Set(hedge.map(\.positionIdx)).sorted().map(String.init).joined(separator: ", "))); "
            + "switch \(hedge[0].symbol) to one-way mode"
    }

    /// Why the account's margin mode does not fit the agent (cross margin, `REGULAR_MARGIN`), or nil. Isolated margin
    /// would cap the position's loss at its own margin and liquidate it long before the sizing's stop; portfolio
    /// margin changes the margin the sizing assumes. The original system trades cross, always.
    package static func marginModeProblem(_ account: AccountInfo) -> String? {
        guard account.marginMode != .regular else { return nil }
        let name = account.marginMode.map { "\($0.displayName), \($0.rawValue)" } ?? account.marginModeText
        return "the account's margin mode is \(name); the agent trades cross margin only: set the unified trading "
            + "account's margin mode to Cross Margin (REGULAR_MARGIN; on the website under Derivatives, Margin Mode, or "
            + "POST /v5/account/set-margin-mode with setMarginMode=REGULAR_MARGIN)"
    }

    /// Reads them all and throws what disagrees.
    static func check(_ client: BybitRESTClient, _ instrument: Instrument, venue: String) throws {
        let info = try client.instrumentInfo()
        var problems = differences(info, instrument)
        if let mode = marginModeProblem(try client.accountInfo()) { problems.append(mode) }
        if let mode = positionModeProblem(try client.positions()) { problems.append(mode) }
        guard problems.isEmpty else {
            throw CommandError(
                "the \(venue) disagrees with the configuration: " + problems.joined(separator: "; ")
                    + " (fix the environment's YAML or the account, then start again)")
        }
    }
}

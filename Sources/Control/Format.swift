import ControlProtocol
import Foundation

/// Terminal output: aligned tables, colour only when stdout is a terminal and NO_COLOR is unset.
enum Style {
    static let colour: Bool = isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil

    static func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
    static func green(_ s: String) -> String { paint(s, "32") }
    static func yellow(_ s: String) -> String { paint(s, "33") }
    static func red(_ s: String) -> String { paint(s, "31") }
    static func bold(_ s: String) -> String { paint(s, "1") }

    static func state(_ s: String) -> String {
        switch s {
        case "active": green(s)
        case "flattening", "halted", "stopping": red(s)
        default: yellow(s)
        }
    }

    static func health(_ s: String) -> String {
        switch s {
        case "healthy": green(s)
        case "unhealthy": red(s)
        default: yellow(s)
        }
    }

    static func money(_ x: Double) -> String {
        let text = String(format: "%+.2f", x)
        return x < 0 ? red(text) : text
    }
}

/// Columns padded to their widest cell (visible width, colour codes aside).
func table(_ header: [String], _ rows: [[String]]) -> String {
    func width(_ s: String) -> Int {
        var n = 0
        var inEscape = false
        for c in s.unicodeScalars {
            if c == "\u{1B}" { inEscape = true; continue }
            if inEscape { if c == "m" { inEscape = false }; continue }
            n += 1
        }
        return n
    }
    var widths = header.map(width)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], width(c)) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - width(c))
        }
        .joined(separator: "  ")
    }
    return ([line(header.map(Style.bold))] + rows.map(line)).joined(separator: "\n") + "\n"
}

func duration(_ seconds: Int64) -> String {
    let d = seconds / 86_400, h = seconds / 3_600 % 24, m = seconds / 60 % 60, s = seconds % 60
    if d > 0 { return "\(d)d \(h)h \(m)m" }
    if h > 0 { return "\(h)h \(m)m" }
    return m > 0 ? "\(m)m \(s)s" : "\(s)s"
}

func ageText(_ ms: Int64?) -> String {
    guard let ms else { return "never" }
    return ms < 1_000 ? "\(ms) ms" : String(format: "%.1f s", Double(ms) / 1000)
}

/// The one-screen status.
func renderStatus(_ s: StatusReport) -> String {
    var out = ""
    func row(_ k: String, _ v: String) { out += k.padding(toLength: 14, withPad: " ", startingAt: 0) + v + "\n" }
    row(
        "environment",
        "\(s.environment) (mode \(s.mode), agent \(s.version), pid \(s.pid), up \(duration(s.uptimeSeconds)))")
    row("state", "\(Style.state(s.state)) — \(s.stateReason) (since \(s.stateSince))")
    if s.state == "observing" && s.requireManualActivation && !s.activated { row("", "waiting for `atctl activate`") }
    if let p = s.position {
        let targets = [p.tp1.map { "TP1 \($0)" }, p.tp2.map { "TP2 \($0)" }].compactMap { $0 }.joined(separator: ", ")
        row(
            "position",
            "\(p.side.uppercased()) \(p.qty) @ \(p.entryPrice) (\(p.setup), \(p.entryTime))\(p.closing ? " closing" : "")"
        )
        row(
            "",
            "stop \(p.stop)\(targets.isEmpty ? "" : ", \(targets)"), unrealized \(Style.money(p.unrealizedPnL)) USDT")
    } else {
        row("position", "flat")
    }
    row("orders", "\(s.workingOrders) working")
    row(
        "P&L today",
        "\(Style.money(s.pnl.todayPnL)) USDT (equity \(String(format: "%.2f", s.pnl.equity))"
            + (s.pnl.realizedToday.map { ", realised \(Style.money($0))" } ?? "") + "); "
            + killSwitchSummary(s.pnl))
    row(
        "heat",
        s.heat.map { String(format: "%.1f%% of the margin it was sized from at risk to the stop", $0 * 100) }
            ?? "no free margin (the position uses all of it)")
    if let va = s.valueArea {
        row(
            "value area",
            "POC \(va.poc ?? "-")  VAH \(va.vah ?? "-")  VAL \(va.val ?? "-")  \(va.valid ? "valid" : Style.yellow("invalid"))"
                + "  (close \(va.close), \(va.minute), \(va.minutesInWindow) min)"
                + (va.approximateShare > 0
                    ? Style.yellow(
                        String(
                            format: "  %.0f%% from klines (%d min)", va.approximateShare * 100, va.approximateMinutes))
                    : ""))
    } else {
        row("value area", "none yet")
    }
    if let sig = s.lastSignal {
        row(
            "last signal",
            "\(sig.action) \(sig.reason) at \(sig.minute)\(sig.detected.isEmpty ? "" : " [\(sig.detected.joined(separator: " "))]")"
        )
    }
    row(
        "data",
        "age \(ageText(s.health.marketDataAgeMs)), stream \(s.health.publicStream), market time \(s.marketTime ?? "-")")
    row(
        "health",
        Style.health(s.health.status)
            + (s.health.reasons.isEmpty ? "" : ": " + s.health.reasons.joined(separator: "; ")))
    return out
}

/// Both kill switches in one phrase: the daily loss limit (`risk.max_daily_loss`, realised, blocks entries until
/// 00:00 UTC) and the halting one (`risk.max_daily_loss_pct`), each `off`, the distance left, or reached.
func killSwitchSummary(_ p: PnLReport) -> String {
    var daily = "daily loss limit off"
    if p.dailyLossLimitReached == true {
        daily = "daily loss limit " + Style.red("REACHED") + " (no entries until 00:00 UTC)"
    } else if let left = p.dailyLossDistance {
        daily = "daily loss limit in \(String(format: "%.2f", left)) USDT realised"
    }
    var halting = "kill switch off"
    if p.killSwitchActive {
        halting = "kill switch " + Style.red("ACTIVE")
    } else if let left = p.killSwitchDistance {
        halting = "kill switch in \(String(format: "%.2f", left)) USDT"
    }
    return daily + ", " + halting
}

/// The exchange's rate limits in one line: the endpoint with the fewest calls left, and the last wait for a reset
/// within the last ten minutes, if any.
func rateLimitLine(_ limits: [RateLimitReport]) -> String {
    var out = "rate limits    "
    if let low = limits.min(by: {
        Double($0.remaining) / Double(max(1, $0.limit)) < Double($1.remaining) / Double(max(1, $1.limit))
    }) {
        out += "fewest left \(low.endpoint) \(low.remaining)/\(low.limit)"
    }
    let recent = limits.filter { ($0.lastWaitAgoMs ?? .max) < 600_000 }.min {
        ($0.lastWaitAgoMs ?? 0) < ($1.lastWaitAgoMs ?? 0)
    }
    if let w = recent, let reason = w.lastWait {
        let text = "last wait \(w.endpoint) \(w.lastWaitMs ?? 0) ms (\(reason)) \(ageText(w.lastWaitAgoMs)) ago"
        out += ", " + (reason == "refused" ? Style.yellow(text) : text)
    }
    return out + "\n"
}

func renderHealth(_ h: HealthReport) -> String {
    var out = "status         \(Style.health(h.status))\n"
    for r in h.reasons { out += "  - \(r)\n" }
    out +=
        "market data    \(ageText(h.marketDataAgeMs)) old, public stream \(h.publicStream), \(h.reconnects) reconnects, \(h.gaps) gaps\n"
    out +=
        "venue          "
        + (h.lastVenueSuccessAgoMs.map { "last success \(ageText($0)) ago" } ?? "none (orders stay local)") + "\n"
    out += "database       \(h.databaseWritable ? "writable" : Style.red("NOT writable"))"
    if let held = h.heldRecords, held > 0 { out += " (\(held) records held in memory)" }
    out += "\n"
    if let free = h.diskFreeBytes { out += "disk free      \(free / 1_048_576) MB (state directory)\n" }
    if let limits = h.rateLimits, !limits.isEmpty { out += rateLimitLine(limits) }
    out += "engine loop    lag \(h.loopLagMs) ms\n"
    out += "clock offset   " + (h.clockOffsetMs.map { "\($0) ms" } ?? "-") + "\n"
    out += "watchdog       \(h.watchdog)\n"
    return out
}

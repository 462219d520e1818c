import AgentConfig
public import AgentSupport
import ControlProtocol
import Engine
import Exchange
import Foundation
import Logging

extension AgentEngine {
    // MARK: - Commands that change something (they run on the engine thread, in order with market data)

    func onCommand(_ call: ControlCall, wall: WallTime) {
        let cmd = call.command
        var outcome: (ok: Bool, text: String)
        switch cmd {
        case .activate:
            outcome = transition(call, wall: wall) { s throws(SupervisorRefusal) in try s.activate() }
        case .pause:
            outcome = transition(call, wall: wall) { s throws(SupervisorRefusal) in try s.pause() }
        case .resume:
            var blocker: String?
            if trader.killSwitchActive {
                blocker = "the kill switch is active (atctl kill-switch-reset first)"
            } else if supervisor.state == .halted && supervisor.haltCause == .positionMismatch {
                blocker = "a position mismatch halted trading; resolve it at the exchange, then restart the agent"
            } else if let venueBlocker = venue.resumeBlocker {
                blocker = venueBlocker
            }
            outcome = transition(call, wall: wall) { s throws(SupervisorRefusal) in try s.resume(blocker: blocker) }
        case .killSwitchReset:
            if trader.killSwitchActive {
                trader.resetKillSwitch()
                raise(alerts.killSwitchReset(uid: call.peerUid, equity: trader.equity), wall: wall)
                let text = "kill switch reset; state stays \(supervisor.state.rawValue) until `atctl resume`"
                reply(call, ActionReport(state: supervisor.state.rawValue, message: text))
                outcome = (true, text)
            } else {
                let text = "the kill switch is not active"
                reply(call, ActionReport(state: supervisor.state.rawValue, message: text))
                outcome = (true, text)
            }
        case .flatten:
            let timeout = Int64(call.request.args?["timeout"]?.integer ?? 60) * 1000
            if supervisor.state == .flattening {
                flattenWaiters.append((call, wall + timeout))
                outcome = (true, "joined the flatten in progress")
            } else {
                flattenSteps = []
                flattenWaiters.append((call, wall + timeout))
                logger.notice(
                    "flatten requested by the operator",
                    metadata: ["event": "flatten.started", "peer.uid": "\(call.peerUid)"])
                startFlatten(.operatorFlatten, wall: wall)
                outcome = (true, "flatten started")
            }
        case .reload:
            outcome = reload(call, wall: wall)
        default:
            replyError(
                call, ControlFailure(ControlFailure.unknownCommand, "\(cmd.rawValue) is not handled by the engine"))
            outcome = (false, "not handled")
        }
        let args = (try? String(decoding: JSONEncoder().encode(call.request.args ?? [:]), as: UTF8.self)) ?? "{}"
        batch.commands.append(
            CommandRow(
                wallTs: wall.millis, uid: call.peerUid, cmd: cmd.rawValue, args: args, ok: outcome.ok,
                result: outcome.text))
        // Every command the engine handles changes how it trades: `replay` takes over the agent's state here.
        if outcome.ok {
            batch.runs.append(runRow(cause: cmd == .reload ? "reload" : "command \(cmd.rawValue)", wall: wall))
        }
        logger.notice(
            "operator command \(cmd.rawValue): \(outcome.text)",
            metadata: [
                "event": "control.command", "command": "\(cmd.rawValue)", "peer.uid": "\(call.peerUid)",
                "ok": "\(outcome.ok)",
            ])
        publish(wall: wall)
    }

    private func transition(
        _ call: ControlCall, wall: WallTime,
        _ body: (inout Supervisor) throws(SupervisorRefusal) -> Transition?
    ) -> (Bool, String) {
        var s = supervisor
        do {
            let t = try body(&s)
            supervisor = s
            note(t, wall: wall)
            let text = t.map { "\($0.from.rawValue) → \($0.to.rawValue)" } ?? "already \(supervisor.state.rawValue)"
            reply(call, ActionReport(state: supervisor.state.rawValue, message: text))
            return (true, text)
        } catch {
            replyError(call, ControlFailure(ControlFailure.refused, error.message))
            return (false, error.message)
        }
    }

    private func reload(_ call: ControlCall, wall: WallTime) -> (Bool, String) {
        guard let load = reloadSource else {
            replyError(
                call,
                ControlFailure(ControlFailure.refused, "this agent was started without a configuration to re-read"))
            return (false, "no configuration source")
        }
        let fresh: ResolvedConfig
        do {
            fresh = try load()
        } catch {
            let text = "configuration not reloaded: \(error)"
            replyError(call, ControlFailure(ControlFailure.failed, text))
            return (false, text)
        }
        let (restart, flat, live) = AgentConfiguration.classify(from: settings.resolved, to: fresh)
        if !restart.isEmpty {
            let text =
                "refused: \(restart.joined(separator: ", ")) change only with a restart (flat first for a mode or environment change)"
            replyError(call, ControlFailure(ControlFailure.refused, text))
            return (false, text)
        }
        let inPosition = trader.position != nil || trader.workingEntryOrder != nil || !kernel.book.workingOrders.isEmpty
        if !flat.isEmpty && inPosition {
            let text =
                "refused while a position or order is open: \(flat.joined(separator: ", ")) rebuild the value area window; flatten or wait until flat"
            replyError(call, ControlFailure(ControlFailure.refused, text))
            return (false, text)
        }
        var next = AgentConfiguration(fresh, environment: settings.environment)
        next.resolved = fresh
        settings = next
        trader.reconfigure(next.strategy)
        kernel.book.reconfigure(next.strategy)
        sink.level = LogSink.level(named: next.agent.logLevel)
        var steps = live.map { "\($0) = \(fresh.values[$0]!)" }
        if !flat.isEmpty {
            steps += flat.map { "\($0) = \(fresh.values[$0]!)" }
            do {
                steps.append(try rebuildWindow(wall: wall))
            } catch {
                steps.append("window rebuild failed: \(error)")
            }
        }
        let text = steps.isEmpty ? "configuration unchanged" : "applied \(live.count + flat.count) change(s)"
        reply(call, ActionReport(state: supervisor.state.rawValue, message: text, steps: steps))
        batch.snapshot = makeSnapshot(wall: wall)
        return (true, text + (steps.isEmpty ? "" : ": " + steps.joined(separator: ", ")))
    }

    // MARK: - Replies

    func reply<R: Codable & Sendable>(_ call: ControlCall, _ result: R) {
        call.reply(encodeReply(ControlReply(id: call.request.id, result: result)))
    }

    func replyError(_ call: ControlCall, _ failure: ControlFailure) {
        call.reply(encodeReply(ControlReply<NoResult>(id: call.request.id, error: failure)))
    }

    // MARK: - Published state

    func publish(wall: WallTime) {
        let health = healthReport(wall: wall)
        let pnl = pnlReport()
        let va = valueAreaReport()
        let position = positionReport()
        let orders = orderReports()
        let status = StatusReport(
            environment: settings.environment, mode: settings.mode.rawValue, state: supervisor.state.rawValue,
            stateReason: stateReason, stateSince: isoTime(stateSinceWall.millis, milliseconds: true),
            activated: supervisor.activated,
            requireManualActivation: settings.agent.requireManualActivation,
            marketTime: lastMarketTs > 0 ? isoTime(lastMarketTs, milliseconds: true) : nil, position: position,
            workingOrders: kernel.book.workingOrders.count, pnl: pnl, heat: trader.position == nil ? nil : trader.heat,
            valueArea: va, lastSignal: lastSignal.map(signalReport),
            lastTrade: lastTrade.map {
                "\(priceText($0.price)) × \(sizeText($0.size)) at \(isoTime($0.ts, milliseconds: true))"
            },
            health: health, uptimeSeconds: (wall - startedWall) / 1000, version: version, pid: getpid()
        )
        let line =
            "\(supervisor.state.rawValue), \(settings.mode.rawValue), "
            + (position.map { "\($0.side) \($0.qty) @ \($0.entryPrice)" } ?? "flat")
        tape.update(trips: trader.roundTrips, position: trader.position)
        publishSequence += 1
        board.publish(
            PublishedState(
                status: status, positions: position.map { [$0] } ?? [], orders: orders, valueArea: va, tape: tape,
                unprotectedMs: venue.unprotectedMs(wall: wall), sequence: publishSequence),
            statusLine: line)
    }

    private var stateReason: String {
        if supervisor.state == .warming, let f = lastFeatures {
            return "\(supervisor.reason) (\(f.index + 1)/\(settings.strategy.warmupMinutes) minutes)"
        }
        return supervisor.reason
    }

    /// How long `health` mentions a rate-limit refusal by the exchange.
    static let rateLimitRefusalShownMs: Int64 = 60_000

    func healthReport(wall: WallTime) -> HealthReport {
        var unhealthy: [String] = []
        var degraded: [String] = []
        let age = lastMessageWall.map { wall - $0 }
        if let since = journal.failingSince {
            unhealthy.append(
                "database not writable since \(isoTime(since.millis)) (\(journal.error)): \(journal.rows) records held in memory, "
                    + (journal.full ? "flattened and halted at the bound" : "entries vetoed"))
        } else if !databaseWritable {
            unhealthy.append("database not writable (raw market data refused)")
        }
        if isDiskLow, let free = diskFreeBytes {
            degraded.append(
                "\(free / 1_048_576) MB free on the state directory's disk (under \(settings.agent.minFreeDiskMB) MB)")
        }
        if isStale(wall: wall) {
            degraded.append("stale market data (no quote for over \(settings.strategy.staleFeedSeconds) s)")
        }
        if streamState != .ready { degraded.append("public stream \(streamState)") }
        if store.rawBacklog > 10 { degraded.append("raw data writes behind (\(store.rawBacklog) batches)") }
        if loopLagMs > 1_000 { degraded.append("engine loop lag \(loopLagMs) ms") }
        if trader.killSwitchActive { degraded.append("kill switch active") }
        if trader.dailyLossLimitReached { degraded.append("daily loss limit reached (no entries until 00:00 UTC)") }
        if settings.mode != .sim, let off = clockOffsetMs, abs(off) > 2_000 {
            degraded.append("clock offset \(off) ms against market time")
        }
        degraded += venue.degradedReasons(wall: wall)
        let rateLimits = venue.rateLimits(wall: wall)
        for r in rateLimits where r.lastWait == RateLimitWait.Reason.refused.rawValue {
            guard let ago = r.lastWaitAgoMs, ago < Self.rateLimitRefusalShownMs else { continue }
            degraded.append(
                "the \(venue.role.name) refused \(r.endpoint) for its rate limit \(ago / 1000) s ago "
                    + "(waited \(r.lastWaitMs ?? 0) ms for the reset; runbooks/rate-limits.md)")
        }
        let status = !unhealthy.isEmpty ? "unhealthy" : (!degraded.isEmpty ? "degraded" : "healthy")
        return HealthReport(
            status: status, reasons: unhealthy + degraded, marketDataAgeMs: age, publicStream: "\(streamState)",
            lastVenueSuccessAgoMs: venue.lastSuccessWall.map { wall - $0 }, databaseWritable: databaseWritable,
            loopLagMs: loopLagMs,
            clockOffsetMs: clockOffsetMs, reconnects: reconnects, gaps: gapCount, watchdog: watchdogDescription,
            heldRecords: journal.rows, diskFreeBytes: diskFreeBytes, rateLimits: rateLimits.isEmpty ? nil : rateLimits)
    }

    func pnlReport() -> PnLReport {
        let today = trader.equity - trader.dayStartEquity
        let limit = settings.strategy.maxDailyLossPct.map { -$0 * trader.dayStartEquity }
        let realized = trader.dayRealizedPnL
        let dailyLimit = settings.strategy.maxDailyLoss.map { -$0 }
        let trips = trader.roundTrips
        return PnLReport(
            equity: trader.equity, cash: trader.cash, unrealizedPnL: trader.unrealized, todayPnL: today,
            dayStartEquity: trader.dayStartEquity, killSwitchLoss: limit,
            killSwitchDistance: limit.map { max(0, today - $0) }, killSwitchActive: trader.killSwitchActive,
            realizedToday: realized, dailyLossLimit: dailyLimit,
            dailyLossDistance: dailyLimit.map { max(0, realized - $0) },
            dailyLossLimitReached: trader.dailyLossLimitReached, feesPaid: trader.feesPaid,
            fundingPaid: trader.fundingPaid,
            roundTrips: trips.count, winningRoundTrips: trips.filter { $0.netPnL > 0 }.count,
            netPnLAllTime: trader.cash - settings.strategy.initialEquity
        )
    }

    func positionReport() -> PositionReport? {
        guard let p = trader.position else { return nil }
        return PositionReport(
            side: "\(p.direction)", qty: sizeText(p.qty), setup: p.setup.rawValue, entryPrice: priceText(p.entryPrice),
            entryTime: isoTime(p.entryTs, milliseconds: true), stop: halfTickText(p.stopTwice),
            tp1: p.tp1Done ? nil : p.tp1Twice.map(halfTickText),
            tp2: p.tp2Twice.map(halfTickText), tp1Done: p.tp1Done, unrealizedPnL: trader.unrealized, closing: p.closing
        )
    }

    func orderReports() -> [OrderReport] {
        let ours = kernel.book.workingOrders.map { i in
            var price: String?
            if case .limit(let p) = i.type { price = priceText(p) }
            let unknown = venue.outcomeUnknown(i.id)
            return OrderReport(
                id: i.id, side: "\(i.side)", qty: sizeText(i.qty), type: price == nil ? "market" : "limit",
                price: price,
                reduceOnly: i.reduceOnly, purpose: i.purpose.label + (unknown ? " (outcome unknown: querying)" : ""),
                decidedAt: isoTime(i.decisionTs, milliseconds: true))
        }
        // The position's own conditional orders the exchange holds (shadow: the testnet's).
        let held = venue.heldOrders
        return ours + held
    }

    func valueAreaReport() -> ValueAreaReport? {
        guard let f = lastFeatures else { return nil }
        return ValueAreaReport(
            minute: isoTime(f.ts), close: priceText(f.close), poc: f.valueArea.map { halfTickText($0.pocTwiceTicks) },
            vah: f.valueArea.map { priceText($0.vahTicks) }, val: f.valueArea.map { priceText($0.valTicks) },
            valid: f.valueAreaValid,
            binWidth: priceText(f.binTicks), coverage: f.valueArea?.coverage,
            minutesInWindow: min(f.index + 1, settings.features.rollingWindowMinutes),
            approximateShare: f.approximateShare, approximateMinutes: f.approximateMinutes,
            orderFlowMethod: f.orderFlowMethod.rawValue
        )
    }

    func signalReport(_ r: SignalRecord) -> SignalReport {
        SignalReport(
            minute: isoTime(r.ts), action: r.action.rawValue, reason: r.reason.description,
            detected: detectedNames(r.detections),
            acceptanceAbove: describeAcceptance(r.above, settings.instrument),
            acceptanceBelow: describeAcceptance(r.below, settings.instrument))
    }
}

/// One reply line (no newline).
func encodeReply<R: Codable & Sendable>(_ reply: ControlReply<R>) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(reply))
        ?? Data(#"{"ok":false,"error":{"code":"failed","message":"reply could not be encoded"}}"#.utf8)
}

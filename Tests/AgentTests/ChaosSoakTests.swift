import ControlProtocol
import Engine
import Exchange
import Foundation
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research
@testable import Simulator

/// The chaos soak (`make chaos`; not part of `make test`): live against the simulated venue for a market day at
/// speed, with private-stream cuts, stalls and refused auths, partial fills, lost create replies, 429 storms, one
/// ADL, ten crashes (kill -9: the engine and its venue worker abandoned mid-run, a new one recovering from the
/// database) and full databases (the page limit, `PRAGMA max_page_count`) at random moments. After every quiet market minute it records whether the agent's position equals the
/// exchange's and whether the exchange holds a stop; it times every stretch the exchange held a position without
/// a stop. The report goes to standard output and to `AUCTION_CHAOS_REPORT` (default .build/chaos-report.md);
/// docs/RELIABILITY.md keeps the last one.
@Suite(.tags(.e2e), .serialized, .enabled(if: ProcessInfo.processInfo.environment["AUCTION_CHAOS"] != nil))
struct ChaosSoakTests {
    @Test func liveKeepsTheExchangesBooksThroughADayOfChaos() async throws {
        let env = ProcessInfo.processInfo.environment
        let hours = Double(env["AUCTION_CHAOS_HOURS"] ?? "") ?? 24
        let speed = Double(env["AUCTION_CHAOS_SPEED"] ?? "") ?? 120
        let seed = UInt64(env["AUCTION_CHAOS_SEED"] ?? "") ?? 11
        let limitSeconds = 30
        // The soak is about the exchange's books, not the strategy: both kill switches are out of the way.
        let h = try LiveHarness(
            seed: seed,
            overrides: [
                "live.max_unprotected_seconds=\(limitSeconds)", "risk.max_daily_loss_pct=off",
                "risk.max_daily_loss=off",
            ])
        var rng = SplitMix(seed: seed)
        let started = wallClockMillis()
        try h.start()
        // Warm the window at full speed, then pace the market.
        await h.run(minutes: 35)
        h.speed = speed

        let totalMinutes = hours * 60
        let startTs = h.marketTs
        let endTs = startTs + Int64(totalMinutes * 60_000)
        // Ten crashes at random market times; one ADL around the middle; a fault every 8-20 market minutes.
        var crashes = (0..<10).map { _ in
            startTs + Int64(Double(rng.next() % 1_000_000) / 1_000_000 * totalMinutes * 60_000)
        }.sorted()
        var adlDue: Int64? = startTs + Int64(totalMinutes * 30_000)
        var nextFault = startTs + 10 * 60_000
        var faultClearWall: Int64?
        var log: [String] = []
        var counts: [String: Int] = [:]
        var checks = 0
        var positionMismatches = 0
        var unstopped = 0
        var unprotectedSince: Int64?
        var longestUnprotectedMs: Int64 = 0
        var beyondLimitMs: Int64 = 0
        var lastCheckMinute: Int64 = 0
        var adlDone = false
        // Full-database phases: when each began and ended (market time), and the most records held at once.
        var diskFullSince: Int64?
        var diskFullWindows: [(from: Int64, to: Int64)] = []
        var mostHeld = 0
        func liftDiskFull(_ h: LiveHarness) {
            guard let since = diskFullSince else { return }
            try? h.engine.store.setPageLimit(nil)
            diskFullWindows.append((since, h.marketTs))
            diskFullSince = nil
        }

        func measure(_ h: LiveHarness) {
            let now = wallClockMillis()
            mostHeld = max(mostHeld, h.engine.journal.rows)
            if h.venuePosition != 0 && h.venueStop == nil {
                unprotectedSince = unprotectedSince ?? now
            } else if let since = unprotectedSince {
                let stretch = now - since
                longestUnprotectedMs = max(longestUnprotectedMs, stretch)
                beyondLimitMs += max(0, stretch - Int64(limitSeconds) * 1000)
                unprotectedSince = nil
            }
            // A quiet moment: nothing in flight, the stream authenticated, not flattening.
            let minute = h.marketTs / 60_000
            let quiet =
                !h.exchange.state.book.hasOrdersInFlight && !h.exchange.state.stopInFlight
                && h.exchange.state.streamState == .ready && h.engine.supervisor.state != .flattening
                && faultClearWall == nil
            if quiet && minute != lastCheckMinute {
                lastCheckMinute = minute
                checks += 1
                if h.engine.trader.signedQty != h.venuePosition {
                    positionMismatches += 1
                    log.append(
                        "minute \(isoTime(h.marketTs)): agent \(h.engine.trader.signedQty) lots, exchange \(h.venuePosition)"
                    )
                }
                if h.venuePosition != 0 && h.venueStop == nil { unstopped += 1 }
            }
        }

        func fault(_ h: LiveHarness) {
            let now = wallClockMillis()
            if let clear = faultClearWall, now >= clear {
                try? h.fault("{}")
                liftDiskFull(h)
                faultClearWall = nil
            }
            guard h.marketTs >= nextFault, faultClearWall == nil else { return }
            nextFault = h.marketTs + Int64(8 + rng.next() % 13) * 60_000
            let kinds = [
                "cut", "stall", "auth", "drop", "partial", "lost_reply", "hung_reply", "storm_429", "disk_full",
            ]
            let kind = kinds[Int(rng.next() % UInt64(kinds.count))]
            counts[kind, default: 0] += 1
            let hold = Int64(4_000 + rng.next() % 12_000)
            switch kind {
            case "cut": try? h.fault(#"{"cutPrivateStreams":true}"#); faultClearWall = now + hold
            case "stall": try? h.fault(#"{"stallPrivateStreams":true}"#); faultClearWall = now + hold
            case "auth":
                try? h.fault(#"{"failPrivateAuth":true,"dropPrivateWebSockets":true}"#); faultClearWall = now + hold
            case "drop": try? h.fault(#"{"dropPrivateWebSockets":true}"#)
            case "partial": try? h.fault(#"{"thinBookLots":"\#(1 + rng.next() % 4)","thinBookCount":"1"}"#)
            case "lost_reply": try? h.fault(#"{"dropCreateRepliesCount":"10"}"#)
            case "hung_reply":
                // The next creates are made at once and answered 15 s later (after the client's 10 s timeout).
                try? h.fault(#"{"holdCreateRepliesCount":"3","holdReplyMs":"15000"}"#)
            case "disk_full":
                // The database may not grow: each step's records wait in the engine's journal.
                try? h.engine.store.setPageLimit(try h.engine.store.pageCount())
                diskFullSince = h.marketTs
                faultClearWall = now + hold
            default: try? h.fault(#"{"failNextHTTPStatus":429,"failNextHTTPCount":"\#(5 + rng.next() % 20)"}"#)
            }
        }

        h.everySecond = { h in
            measure(h)
            fault(h)
            if let due = adlDue, h.marketTs >= due, h.venuePosition != 0, h.exchange.state.streamState == .ready {
                let lots = max(1, abs(h.venuePosition) / 2)
                if h.venue.forceClose(lots: lots, execType: "AdlTrade") != nil {
                    adlDue = nil
                    adlDone = true
                    log.append("ADL of \(lots) lots at \(isoTime(h.marketTs))")
                }
            }
            // The operator resumes after reading the ADL alert.
            if h.engine.supervisor.state == .halted && h.engine.supervisor.reason.hasPrefix("adl") {
                await h.command(.resume)
            }
        }

        while h.marketTs < endTs {
            let until = min(crashes.first ?? endTs, endTs)
            await h.run(minutes: Double(until - h.marketTs) / 60_000 + 1.0 / 60)
            if let c = crashes.first, h.marketTs >= c {
                crashes.removeFirst()
                // Records held in memory die with a process: the crash waits for the database to take them.
                if diskFullSince != nil {
                    liftDiskFull(h)
                    faultClearWall = nil
                    _ = await h.wait(seconds: 30) { h in h.engine.journal.isEmpty }
                }
                counts["kill -9", default: 0] += 1
                log.append(
                    "kill -9 at \(isoTime(h.marketTs)) (position \(h.venuePosition) lots, \(h.exchange.state.book.trackedIds.count) in flight)"
                )
                h.kill()
                try h.start()
            }
        }
        try? h.fault("{}")
        liftDiskFull(h)
        _ = await h.wait(seconds: 60) { h in h.engine.journal.isEmpty }
        _ = await h.wait(seconds: 60) { h in
            h.exchange.state.streamState == .ready && !h.exchange.state.book.hasOrdersInFlight
                && h.engine.trader.signedQty == h.venuePosition
        }
        measure(h)

        // Audit: every execution of every order at the exchange is booked by the agent, once.
        let booked = try h.engine.store.filledLotsByOrder()
        let recorded = Set(try h.engine.store.orders().map(\.intent.id))
        let (venueOrders, venueExecutions) = h.venue.lock.withLock { (h.venue.orders, h.venue.executions) }
        var executedByOrder: [String: Int64] = [:]
        for e in venueExecutions where e.execType != "Funding" { executedByOrder[e.orderId, default: 0] += e.qty }
        var unbooked: [String] = []
        for (orderId, lots) in executedByOrder.sorted(by: { $0.key < $1.key }) {
            guard let o = venueOrders[orderId] else { continue }
            let key = o.orderLinkId.isEmpty || o.orderLinkId.hasPrefix("at-f-") ? "venue-\(orderId)" : o.orderLinkId
            if booked[key] != lots {
                unbooked.append(
                    "\(o.orderLinkId.isEmpty ? orderId : o.orderLinkId): exchange \(lots), agent \(booked[key] ?? 0)")
            }
        }
        let foreignOrders = venueOrders.values.filter {
            !$0.orderLinkId.isEmpty && !$0.orderLinkId.hasPrefix("at-f-") && !recorded.contains($0.orderLinkId)
        }
        let corrections = booked.keys.filter { $0.hasPrefix("venue-flat-") }
        let halts = try h.engine.store.transitionReasons(to: "halted")
        let otherHalts = halts.filter { !$0.hasPrefix("adl") }
        let ourOrders = venueOrders.values.filter {
            $0.orderLinkId.hasPrefix("at-") && !$0.orderLinkId.hasPrefix("at-f-")
        }.count

        // Every minute of the full-database phases has its features and its signal in the database.
        var minutesChecked = 0
        var minutesLost: [String] = []
        for w in diskFullWindows {
            let stored = try h.engine.store.featureMinutes(from: w.from / 60_000 * 60_000)
            let signals = Set(try h.engine.store.signals(from: w.from, to: w.to).map(\.ts))
            var m = w.from / 60_000 * 60_000 + 60_000
            while m + 60_000 <= w.to {
                minutesChecked += 1
                if !stored.contains(m) || !signals.contains(m) { minutesLost.append(isoTime(m)) }
                m += 60_000
            }
        }

        // Each position the exchange opened: wall seconds from its first fill to an exchange-held stop.
        let delays = h.venue.lock.withLock { h.venue.protectionDelaysMs }.sorted()
        func quantile(_ q: Double) -> String {
            guard !delays.isEmpty else { return "-" }
            let i = min(delays.count - 1, Int((Double(delays.count - 1) * q).rounded(.up)))
            return formatNumber(Double(delays[i]) / 1000)
        }

        let report = """
            # Chaos soak

            Command: `make chaos` (AUCTION_CHAOS_HOURS=\(formatNumber(hours)) AUCTION_CHAOS_SPEED=\(formatNumber(speed)) \
            AUCTION_CHAOS_SEED=\(seed)); \(formatNumber(Double(wallClockMillis() - started) / 60_000)) min wall, \
            \(isoTime(startTs)) to \(isoTime(h.marketTs)) market time.

            | measure | value |
            | --- | --- |
            | orders the agent sent (at the exchange) | \(ourOrders) |
            | orders with executions at the exchange | \(executedByOrder.count) |
            | unbooked or misbooked fills (orders) | \(unbooked.count) |
            | duplicate orders (at the exchange, unknown to the agent's records) | \(foreignOrders.count) |
            | book corrections at flatten | \(corrections.count) |
            | quiet-moment checks | \(checks) |
            | checks where positions differed | \(positionMismatches) |
            | checks with a position and no exchange stop | \(unstopped) |
            | longest stretch unprotected | \(formatNumber(Double(longestUnprotectedMs) / 1000)) s (limit \(limitSeconds) s) |
            | positions opened at the exchange: first fill → exchange-held stop, s (p50 / p99 / max) | \(delays.count): \(quantile(0.5)) / \(quantile(0.99)) / \(delays.last.map { formatNumber(Double($0) / 1000) } ?? "-") |
            | seconds unprotected beyond the limit | \(formatNumber(Double(beyondLimitMs) / 1000)) |
            | halts | \(halts.count) (\(halts.map { $0.prefix(40) }.joined(separator: "; "))) |
            | halts other than the ADL's | \(otherHalts.count) |
            | ADL injected | \(adlDone ? "yes" : "no (no position at the time)") |
            | full-database phases | \(diskFullWindows.count), \(minutesChecked) market minutes; most records held in memory at once: \(mostHeld) |
            | minutes of those phases missing features or signals | \(minutesLost.count) |
            | faults | \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) |
            | final position: agent / exchange | \(h.engine.trader.signedQty) / \(h.venuePosition) lots |

            \(log.map { "- \($0)" }.joined(separator: "\n"))
            \(unbooked.map { "- unbooked: \($0)" }.joined(separator: "\n"))
            \(otherHalts.map { "- halt: \($0)" }.joined(separator: "\n"))

            """
        print(report)
        let path = env["AUCTION_CHAOS_REPORT"] ?? packageRoot.appendingPathComponent(".build/chaos-report.md").path
        try report.write(toFile: path, atomically: true, encoding: .utf8)
        h.stop()
        #expect(unbooked.isEmpty, "\(unbooked)")
        #expect(foreignOrders.isEmpty)
        #expect(beyondLimitMs == 0)
        #expect(otherHalts.isEmpty, "\(otherHalts)")
        #expect(minutesLost.isEmpty, "\(minutesLost)")
        #expect(delays.allSatisfy { $0 <= 1_000 }, "an entry fill waited more than 1 s for its stop: \(delays)")
        #expect(h.engine.trader.signedQty == h.venuePosition)
    }
}

import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Exchange
import ExchangeStreams
import Foundation
import Research
import Synchronization

/// One preflight check's outcome.
struct PreflightCheck {
    var name: String
    var ok: Bool
    var detail: String
}

/// Holds what the stream checks saw, across their tasks.
final class StreamProbe: Sendable {
    private struct Seen {
        var publicData = false
        var privateReady = false
        var privateRefused: String?
    }
    private let seen = Mutex(Seen())
    func sawPublicData() { seen.withLock { $0.publicData = true } }
    func sawPrivateReady() { seen.withLock { $0.privateReady = true } }
    func refused(_ reason: String) { seen.withLock { $0.privateRefused = reason } }
    var state: (Bool, Bool, String?) { seen.withLock { ($0.publicData, $0.privateReady, $0.privateRefused) } }
}

/// `auction-agent preflight`: everything an operator checks before `systemctl start`.
struct PreflightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight",
        abstract: "Check configuration, keys, REST, clock, instrument, wallet, position, orders and both streams.",
        discussion: """
            Runs against what the environment's mode will use: orders and the private stream go to the exchange \
            (exchange.rest_url, exchange.private_ws_url, keys in exchange.api_key_env/api_secret_env) in live and \
            the other modes, to the testnet in shadow (shadow.rest_url, shadow.private_ws_url, keys in \
            shadow.api_key_env/api_secret_env); market data always from exchange.public_ws_url. Key values are never \
            printed. Checks: the configuration is valid; the keys are present; REST answers; the clock offset to \
            the exchange is under --max-clock-offset-ms; the instrument's rules equal the configuration's \
            (tick, qty step, minimum; a difference fails naming both values); the account is in one-way position \
            mode; the wallet can margin one minimum position; the position and open orders (listed, the \
            position's own stop orders marked); the public stream delivers data and the private stream \
            authenticates within --stream-timeout seconds. Exit status 0 when every check passes, 1 otherwise \
            (each failure says why). --json prints one JSON object for scripts.
            """
    )

    @OptionGroup var config: ConfigOptions

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "Seconds to wait for each stream.")
    var streamTimeout: Double = 10

    @Option(help: "Largest acceptable clock offset to the exchange (ms).")
    var maxClockOffsetMs: Int64 = 1_000

    func run() throws {
        var checks: [PreflightCheck] = []
        func add(_ name: String, _ ok: Bool, _ detail: String) {
            checks.append(PreflightCheck(name: name, ok: ok, detail: detail))
        }
        defer { report(checks) }

        let resolved: ResolvedConfig
        do {
            resolved = try ConfigLoader.load(config.selection, defaultEnvironment: nil)
            add("config", true, resolved.source ?? "built-in defaults")
        } catch {
            add("config", false, "\(error)")
            throw ExitCode.failure
        }
        let env = ProcessInfo.processInfo.environment
        // Shadow sends its orders to the testnet: its keys and URLs are what the agent will use.
        let configuration = AgentConfiguration(resolved, environment: resolved.environment ?? "custom")
        let account = configuration.mode == .shadow ? configuration.shadow.account : configuration.exchange.account
        add(
            "venue", true,
            configuration.mode == .shadow
                ? "testnet (mode shadow): \(account.restURL)"
                : "exchange (mode \(configuration.mode.rawValue)): \(account.restURL)")
        let keyName = account.apiKeyEnv
        let secretName = account.apiSecretEnv
        let key = env[keyName].flatMap { $0.isEmpty ? nil : $0 }
        let secret = env[secretName].flatMap { $0.isEmpty ? nil : $0 }
        let credentials = key.flatMap { k in secret.map { BybitCredentials(apiKey: k, apiSecret: $0) } }
        add(
            "keys", credentials != nil,
            credentials != nil
                ? "present in \(keyName), \(secretName)"
                : "missing: set \([key == nil ? keyName : nil, secret == nil ? secretName : nil].compactMap { $0 }.joined(separator: " and "))"
        )

        var rest = BybitRESTConfig(baseURL: account.restURL)
        rest.recvWindowMs = configuration.exchange.recvWindowMs
        rest.symbol = resolved.instrument.symbol
        rest.maxAttempts = 2
        let client = BybitRESTClient(config: rest, credentials: credentials)
        do {
            let offset = try client.syncTime()
            add("rest", true, "\(rest.baseURL) answers")
            add(
                "clock", abs(offset) <= maxClockOffsetMs,
                "offset \(offset) ms to the exchange (limit \(maxClockOffsetMs) ms)")
        } catch {
            add("rest", false, "\(error)")
        }
        var instrument = resolved.instrument
        do {
            let info = try client.instrumentInfo()
            instrument = info.instrument
            let differences = VenueRules.differences(info, resolved.instrument)
            add(
                "instrument", differences.isEmpty,
                "\(info.symbol) \(info.status): tick \(info.tickSize), qty step \(info.qtyStep), min \(info.minOrderQty), "
                    + "max market \(info.maxMarketOrderQty?.description ?? "?")"
                    + (differences.isEmpty
                        ? "" : "; differs from the configuration: " + differences.joined(separator: "; ")))
        } catch {
            add("instrument", false, "\(error)")
        }
        if credentials != nil {
            do {
                let w = try client.walletBalance()
                // One minimum position at the ask, at the strategy's leverage cap, must fit the available balance.
                let ask = (try? client.ticker().ask1Price.doubleValue) ?? 0
                let margin = ask * resolved.instrument.minQty.doubleValue / resolved.strategy.maxLeverage
                let available = w.totalAvailableBalance.doubleValue
                add(
                    "wallet", available >= margin,
                    "equity \(w.totalEquity) USDT, available \(w.totalAvailableBalance)"
                        + (available >= margin
                            ? "" : "; one minimum position needs \(formatNumber(margin)) USDT of margin"))
            } catch {
                add("wallet", false, "\(error)")
            }
            do {
                let account = try client.accountInfo()
                if let problem = VenueRules.marginModeProblem(account) {
                    add("margin mode", false, problem)
                } else {
                    add("margin mode", true, "cross (REGULAR_MARGIN)")
                }
            } catch {
                add("margin mode", false, "\(error)")
            }
            do {
                let all = try client.positions()
                if let problem = VenueRules.positionModeProblem(all) {
                    add("position mode", false, problem)
                } else {
                    add("position mode", true, "one-way")
                }
                let positions = all.filter { $0.side != nil }
                add(
                    "position", true,
                    positions.isEmpty
                        ? "flat"
                        : positions.map { p in
                            "\(p.side!) \(p.size) @ \(p.avgPrice?.description ?? "?")"
                                + (p.stopLoss.map { ", stop \($0)" } ?? "")
                        }.joined(separator: "; "))
            } catch {
                add("position", false, "\(error)")
            }
            do {
                let open = try client.orders(openOnly: true)
                add(
                    "orders", true,
                    open.isEmpty
                        ? "none open"
                        : open.map { o in
                            o.isConditional
                                ? "the position's \(o.stopOrderType) at \(o.triggerPrice?.description ?? "?")"
                                : "\(o.orderLinkId) \(o.side) \(o.qty) \(o.orderStatus)"
                        }.joined(separator: "; "))
            } catch {
                add("orders", false, "\(error)")
            }
        }

        // Streams, concurrently, each within the timeout.
        let probe = StreamProbe()
        let timeout = streamTimeout
        let publicStream = BybitPublicStream(
            settings: StreamSettings(url: configuration.exchange.publicStreamURL), instrument: instrument)
        let privateURL = account.privateStreamURL
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await publicStream.run(
                        onMessage: { m in
                            switch m {
                            case .trades(let t, _) where !t.isEmpty: probe.sawPublicData()
                            case .quote: probe.sawPublicData()
                            default: break
                            }
                        },
                        onStatus: { _ in }
                    )
                }
                if let credentials {
                    let privateStream = BybitPrivateStream(
                        settings: StreamSettings(url: privateURL), credentials: credentials)
                    group.addTask {
                        await privateStream.run(
                            onMessage: { _ in },
                            onStatus: { s in
                                if s == .ready { probe.sawPrivateReady() }
                                if case .disconnected(let reason) = s, reason.contains("authentication") {
                                    probe.refused(reason)
                                }
                            })
                    }
                }
                let deadline = Date().addingTimeInterval(timeout)
                while Date() < deadline {
                    let (pub, priv, refused) = probe.state
                    if pub && (credentials == nil || priv || refused != nil) { break }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                group.cancelAll()
            }
            done.signal()
        }
        done.wait()
        let (pub, priv, refused) = probe.state
        add(
            "public stream", pub,
            pub
                ? "data received"
                : "no data within \(formatNumber(timeout)) s from \(configuration.exchange.publicStreamURL)")
        if credentials != nil {
            add(
                "private stream", priv,
                priv ? "authenticated and subscribed" : refused ?? "not ready within \(formatNumber(timeout)) s")
        }
        if checks.contains(where: { !$0.ok }) { throw ExitCode.failure }
    }

    private func report(_ checks: [PreflightCheck]) {
        if json {
            var list: [JSONValue] = []
            for c in checks {
                var o = JSONObject()
                o["name"] = .string(c.name)
                o["ok"] = .bool(c.ok)
                o["detail"] = .string(c.detail)
                list.append(.object(o))
            }
            var root = JSONObject()
            root["ok"] = .bool(!checks.contains { !$0.ok })
            root["checks"] = .array(list)
            print(JSONValue.object(root).render(indent: 0))
        } else {
            for c in checks { print("\(c.ok ? "ok  " : "FAIL") \(c.name): \(c.detail)") }
            let failed = checks.filter { !$0.ok }.count
            print(
                failed == 0
                    ? "preflight: all \(checks.count) checks passed"
                    : "preflight: \(failed) of \(checks.count) checks failed")
        }
    }
}

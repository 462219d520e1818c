public import Engine
public import Exchange
import Foundation
public import Logging
import NIOCore
import Synchronization
import WSClient

/// The time and a flag shared by a connection's reader and pinger.
final class ConnectionClock: Sendable {
    private let last: Mutex<Int64>
    init(_ now: Int64) { last = Mutex(now) }
    func touch(_ now: Int64) { last.withLock { $0 = now } }
    var lastHeard: Int64 { last.withLock { $0 } }
}

/// The connection went silent past `deadAfterMs`.
struct StreamDead: Error {}

/// The session asked to close the connection (a refused `auth`: Bybit keeps such a socket open and silent).
struct StreamRefused: Error {
    let reason: String
}

/// One Bybit WebSocket, kept alive: connects, runs the `session` (authentication, subscriptions), pings every
/// `pingIntervalMs`, declares the connection dead after `deadAfterMs` without data or pong, reconnects with
/// exponential back-off and jitter, and reports each gap. Runs until its task is cancelled.
struct StreamRunner: Sendable {
    let settings: StreamSettings
    let logger: Logger
    let now: @Sendable () -> Int64
    /// Streams of this process open one at a time (see `OpeningGate`).
    var gate = OpeningGate.shared
    /// The longest one opening keeps the other streams waiting.
    var holdLimitMs: Int64 { min(settings.deadAfterMs, 5_000) }

    /// `open` returns the messages to send on connect; `handle` receives every text message and returns a reason to
    /// close the connection (and reconnect), or nil.
    func run(
        open: @escaping @Sendable () -> [String],
        ping: @escaping @Sendable () -> String,
        handle: @escaping @Sendable (String) -> String?,
        status: @escaping @Sendable (StreamStatus) -> Void
    ) async {
        var attempt = 0
        var rng = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            attempt += 1
            status(.connecting(attempt: attempt))
            let clock = ConnectionClock(now())
            let gotData = ConnectionClock(0)
            var configuration = WebSocketClientConfiguration()
            configuration.maxFrameSize = settings.maxMessageBytes
            configuration.autoPing = .disabled
            var reason = "closed by the server"
            let gate = gate
            let ticket = await gate.enter()
            if Task.isCancelled {
                await gate.leave(ticket)
                return
            }
            let holdLimit = Task { [holdLimitMs] in
                try? await Task.sleep(for: .milliseconds(holdLimitMs))
                await gate.leave(ticket)
            }
            do {
                try await WebSocketClient.connect(url: settings.url, configuration: configuration, logger: logger) {
                    inbound, outbound, _ in
                    await gate.leave(ticket)
                    status(.connected)
                    for message in open() { try await outbound.write(.text(message)) }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await message in inbound.messages(maxSize: settings.maxMessageBytes) {
                                let t = now()
                                clock.touch(t)
                                if gotData.lastHeard == 0 { gotData.touch(t) }
                                if case .text(let text) = message, let refusal = handle(text) {
                                    throw StreamRefused(reason: refusal)
                                }
                            }
                        }
                        group.addTask {
                            var lastPing = now()
                            while !Task.isCancelled {
                                try await Task.sleep(for: .milliseconds(min(settings.pingIntervalMs, 250)))
                                let t = now()
                                if t - clock.lastHeard > settings.deadAfterMs { throw StreamDead() }
                                if t - lastPing >= settings.pingIntervalMs {
                                    lastPing = t
                                    try await outbound.write(.text(ping()))
                                }
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } catch is StreamDead {
                reason = "no data or pong for \(settings.deadAfterMs) ms"
            } catch let refused as StreamRefused {
                reason = refused.reason
            } catch {
                reason = "\(error)"
            }
            holdLimit.cancel()
            await gate.leave(ticket)
            if Task.isCancelled { return }
            let heard = gotData.lastHeard
            if heard != 0 {
                // The connection carried data: the back-off starts again (the gap is reported by the stream).
                attempt = 0
            }
            status(.disconnected(reason: reason))
            let delay = settings.reconnectDelay(attempt: max(attempt, 1), random: Double.random(in: 0...1, using: &rng))
            try? await Task.sleep(for: .milliseconds(delay))
        }
    }
}

/// Bybit's public linear stream for one symbol: trades and L1 as Engine events, gaps reported.
public struct BybitPublicStream: Sendable {
    public let settings: StreamSettings
    public let instrument: Instrument
    private let logger: Logger
    private let now: @Sendable () -> Int64
    /// Deliver each trade's exchange id (`record`).
    public let keepTradeIds: Bool

    public init(
        settings: StreamSettings, instrument: Instrument, logger: Logger = Logger(label: "auction.stream.public"),
        keepTradeIds: Bool = false, now: @escaping @Sendable () -> Int64 = wallClockMillis
    ) {
        self.settings = settings
        self.instrument = instrument
        self.keepTradeIds = keepTradeIds
        self.logger = logger
        self.now = now
    }

    /// Runs until the task is cancelled, delivering messages and status.
    public func run(
        onMessage: @escaping @Sendable (PublicMessage) -> Void, onStatus: @escaping @Sendable (StreamStatus) -> Void
    ) async {
        let parser = PublicMessageParser(instrument: instrument, keepTradeIds: keepTradeIds)
        let symbol = instrument.symbol
        let gaps = GapTracker()
        let counter = RequestCounter()
        await StreamRunner(settings: settings, logger: logger, now: now).run(
            open: {
                [
                    #"{"req_id":"\#(counter.next())","op":"subscribe","args":["publicTrade.\#(symbol)","orderbook.1.\#(symbol)"]}"#
                ]
            },
            ping: { #"{"req_id":"\#(counter.next())","op":"ping"}"# },
            handle: { text -> String? in
                do {
                    let message = try parser.parse(text)
                    switch message {
                    // Trades bound a gap: the first book after a reconnection is the current one, possibly older
                    // than trades printed while disconnected, so a gap ends at the first trade received.
                    case .trades(let t, _) where !t.isEmpty: gaps.heard(t, onStatus)
                    case .control(let op, let success, _) where op == "subscribe" && success: onStatus(.ready)
                    default: break
                    }
                    onMessage(message)
                } catch {
                    onStatus(.malformed("\(error)"))
                }
                return nil
            },
            status: { s in
                if case .disconnected = s { gaps.dropped() }
                onStatus(s)
            }
        )
    }
}

/// Bybit's private stream: authenticated, `order`, `execution`, `position`, `wallet`; executions de-duplicated by
/// `execId` (a fill may be reported twice). A refused `auth` closes the connection and reconnects (Bybit leaves
/// such a socket open and silent). `now` should be the exchange's clock (local time plus the REST clock offset):
/// `expires` is checked against it.
public struct BybitPrivateStream: Sendable {
    public let settings: StreamSettings
    private let credentials: BybitCredentials
    private let logger: Logger
    private let now: @Sendable () -> Int64

    public init(
        settings: StreamSettings, credentials: BybitCredentials,
        logger: Logger = Logger(label: "auction.stream.private"),
        now: @escaping @Sendable () -> Int64 = wallClockMillis
    ) {
        self.settings = settings
        self.credentials = credentials
        self.logger = logger
        self.now = now
    }

    public func run(
        onMessage: @escaping @Sendable (PrivateMessage) -> Void, onStatus: @escaping @Sendable (StreamStatus) -> Void
    ) async {
        let parser = PrivateMessageParser()
        let credentials = credentials
        let now = now
        let seen = ExecutionDeduplicator()
        let counter = RequestCounter()
        await StreamRunner(settings: settings, logger: logger, now: now).run(
            open: {
                let expires = now() + 10_000
                let signature = BybitSigner.websocketSignature(expires: expires, secret: credentials.apiSecret)
                return [
                    #"{"req_id":"\#(counter.next())","op":"auth","args":["\#(credentials.apiKey)",\#(expires),"\#(signature)"]}"#,
                    #"{"req_id":"\#(counter.next())","op":"subscribe","args":["order","execution","position","wallet"]}"#,
                ]
            },
            ping: { #"{"req_id":"\#(counter.next())","op":"ping"}"# },
            handle: { text -> String? in
                do {
                    var message = try parser.parse(text)
                    switch message {
                    case .executions(let list):
                        message = .executions(list.filter { seen.isNew($0.execId) })
                        if case .executions(let kept) = message, kept.isEmpty { return nil }
                    case .control(let op, let success, let text) where op == "auth" && !success:
                        return "authentication refused: \(text)"
                    case .control(let op, let success, _) where op == "subscribe" && success:
                        onStatus(.ready)
                    default: break
                    }
                    onMessage(message)
                } catch {
                    onStatus(.malformed("\(error)"))
                }
                return nil
            },
            status: onStatus
        )
    }
}

/// Reports a gap once data flows again after a drop.
final class GapTracker: Sendable {
    private struct Heard {
        var last: Int64?
        var droppedAfter: Int64?
    }
    private let heard = Mutex(Heard())

    /// A batch of trades: a gap open since a disconnection ends at its first; the last is remembered.
    func heard(_ trades: [TradeEvent], _ status: @Sendable (StreamStatus) -> Void) {
        guard let first = trades.first?.ts, let last = trades.map(\.ts).max() else { return }
        let gap: (Int64, Int64)? = heard.withLock { h in
            defer { h.last = max(h.last ?? last, last) }
            if let from = h.droppedAfter {
                h.droppedAfter = nil
                return (from, first)
            }
            return nil
        }
        if let gap { status(.gap(from: gap.0, to: gap.1)) }
    }

    func dropped() {
        heard.withLock { h in if h.droppedAfter == nil, let last = h.last { h.droppedAfter = last } }
    }
}

/// Remembers recent execution ids, for the stream's tasks.
final class ExecutionDeduplicator: Sendable {
    private let seen = Mutex(RecentIds())

    func isNew(_ id: String) -> Bool { seen.withLock { $0.insert(id) } }
}

/// `req_id` values.
final class RequestCounter: Sendable {
    private let n = Mutex(0)
    func next() -> String {
        n.withLock {
            $0 += 1
            return String($0)
        }
    }
}

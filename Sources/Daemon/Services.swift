import AgentConfig
import AgentSupport
import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

// The daemon's long-lived parts as lifecycle services (docs/ARCHITECTURE.md, "Threads"): each `run()` starts its part,
// waits for the graceful stop and cleans up. `AgentDaemon` lists them in start order; the service group stops them
// in reverse (the engine first, alert delivery last). The control socket is `ControlServer` itself.

/// The engine loop on its own thread: inputs from the queue, a clock tick every 100 ms.
struct EngineService: Service {
    let engine: AgentEngine
    let queue: EventQueue
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        let finished = Completion()
        let thread = Thread {
            var lastTick = WallTime.now
            var running = true
            while running {
                var inputs = queue.takeAll(timeoutMs: 100)
                let wall = WallTime.now
                if wall - lastTick >= 100 {
                    engine.loopLagMs = max(0, wall - lastTick - 100)
                    lastTick = wall
                    inputs.append(.tick(wall: wall))
                }
                running = engine.step(inputs, wall: wall)
            }
            finished.finish()
        }
        thread.name = "engine"
        thread.stackSize = 4 << 20
        thread.start()
        try? await gracefulShutdown()
        notifier.notify("STOPPING=1\nSTATUS=stopping")
        logger.notice("stop requested", metadata: ["event": "agent.stopping"])
        queue.put(.stop(reason: "SIGTERM: graceful stop", done: {}))
        await finished.wait()
    }
}

/// Bybit's public stream into the engine's queue.
struct MarketDataService: Service {
    let url: String
    let instrument: Instrument
    let queue: EventQueue
    /// `agent.record_dir`: the same messages also recorded into daily files (`record`'s), flushed every 5 s. A
    /// recording failure is logged and ends the recording, never the trading.
    var recorder: MarketRecorder?

    func run() async throws {
        let stream = BybitPublicStream(
            settings: StreamSettings(url: url), instrument: instrument, logger: Logger(label: "stream.public"),
            keepTradeIds: recorder != nil)
        let queue = self.queue
        let recorder = self.recorder
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let recorder {
                    group.addTask {
                        while !Task.isCancelled && recorder.failure == nil {
                            try? await Task.sleep(for: .seconds(5))
                            recorder.flush()
                        }
                    }
                }
                await stream.run(
                    onMessage: { m in
                        switch m {
                        case .trades(let t, _): queue.put(.trades(t, wall: .now))
                        case .quote(let q, _): queue.put(.quote(q, wall: .now))
                        case .control: break
                        }
                        recorder?.onMessage(m)
                    },
                    onStatus: { s in
                        queue.put(.stream(s, wall: .now))
                        recorder?.onStatus(s)
                    }
                )
                group.cancelAll()
            }
        }
        _ = recorder?.close()
    }
}

/// `WATCHDOG=1` only while the engine loop has run within half the watchdog interval; `STATUS=` as it changes.
struct WatchdogService: Service {
    let board: StatusBoard
    let notifier: SystemdNotifier

    func run() async throws {
        guard notifier.enabled else {
            try? await gracefulShutdown()
            return
        }
        let halfMs = notifier.watchdogUsec.map { Int64($0 / 2_000) } ?? 0
        let periodMs = halfMs > 0 ? max(50, min(halfMs / 2, 1_000)) : 1_000
        try? await cancelWhenGracefulShutdown {
            var last = ""
            while !Task.isCancelled {
                let status = board.systemdStatus
                if status != last {
                    notifier.notify("STATUS=\(status)")
                    last = status
                }
                if halfMs > 0, !AgentTestHooks.watchdogSuppressed, WallTime.now - board.lastBeat < halfMs {
                    notifier.notify("WATCHDOG=1")
                }
                try await Task.sleep(for: .milliseconds(periodMs))
            }
        }
    }
}

/// The venue's worker thread and private stream (shadow, live): at the stop, the queued calls that are due finish
/// (within `stopBudgetMs`; a working entry's cancel among them), then both stop.
struct VenueService: Service {
    let mirror: ExchangeMirror
    let stopBudgetMs: Int64

    func run() async throws {
        mirror.start()
        try? await gracefulShutdown()
        mirror.stop(deadlineMs: stopBudgetMs)
    }
}

/// Raw trades and quotes are written off the engine thread; the stop flushes what is buffered.
struct PersistenceService: Service {
    let store: AgentStore

    func run() async throws {
        try? await gracefulShutdown()
        store.flushRaw()
    }
}

/// The alert webhook's delivery thread; stopped last, so the alerts of the stop itself are sent.
struct AlertDeliveryService: Service {
    let webhook: WebhookDelivery

    func run() async throws {
        webhook.start()
        try? await gracefulShutdown()
        webhook.stop()
    }
}

/// A one-shot completion an async caller can await.
final class Completion: Sendable {
    private struct State {
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func finish() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.done = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for c in waiters { c.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.done { return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}

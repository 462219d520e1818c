import AgentConfig
import AgentSupport
import Engine
public import Exchange
import Foundation
public import Logging

/// Delivers alerts to a generic webhook: a JSON POST per alert through libcurl, on its own thread, retried with
/// back-off, never blocking trading. Logging and storing the alert is the engine's part; this is the delivery.
///
/// Body: `{"agent":"auction-agent","environment":"paper","kind":"kill_switch","severity":"critical",
/// "message":"...","time":"2026-11-27T01:02:03.456Z"}`.
public final class WebhookDelivery: @unchecked Sendable {
    private let url: String
    private let transport: any HTTPTransport
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [[UInt8]] = []
    private var stopped = false
    /// Back-off between attempts of one alert (ms); the number of entries is the number of retries.
    private let backoffMs: [Int64]
    private let maxQueued = 1_000

    public init(
        url: String, transport: any HTTPTransport = CurlTransport(connectTimeoutMs: 3_000, totalTimeoutMs: 5_000),
        backoffMs: [Int64] = [1_000, 5_000, 15_000], logger: Logger
    ) {
        self.url = url
        self.transport = transport
        self.backoffMs = backoffMs
        self.logger = logger
    }

    /// Starts the delivery thread.
    public func start() {
        let t = Thread { [self] in run() }
        t.name = "alert-webhook"
        t.start()
    }

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Queues one alert; drops the oldest when the webhook has been down for a thousand alerts.
    public func send(environment: String, kind: String, severity: String, message: String, wallTs: Int64) {
        let body =
            "{\"agent\":\"auction-agent\",\"environment\":\(jsonQuote(environment)),\"kind\":\(jsonQuote(kind)),"
            + "\"severity\":\(jsonQuote(severity)),\"message\":\(jsonQuote(message)),\"time\":\(jsonQuote(isoTime(wallTs, milliseconds: true)))}"
        condition.lock()
        if queue.count >= maxQueued { queue.removeFirst() }
        queue.append(Array(body.utf8))
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            let body = queue.removeFirst()
            condition.unlock()
            deliver(body)
        }
    }

    private func deliver(_ body: [UInt8]) {
        var attempt = 0
        while true {
            var problem: String
            do {
                let reply = try transport.send(
                    method: "POST", url: url, headers: ["Content-Type: application/json"], body: body)
                if (200..<300).contains(reply.status) { return }
                problem = "HTTP \(reply.status)"
            } catch {
                problem = error.message
            }
            guard attempt < backoffMs.count else {
                logger.error(
                    "alert webhook failed; alert kept in the database only",
                    metadata: ["event": "alert.webhook_failed", "error": "\(problem)", "attempts": "\(attempt + 1)"])
                return
            }
            // Wait, unless stopping.
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: Double(backoffMs[attempt]) / 1000)
            while !stopped && Date() < deadline { _ = condition.wait(until: deadline) }
            let stop = stopped
            condition.unlock()
            if stop { return }
            attempt += 1
        }
    }
}

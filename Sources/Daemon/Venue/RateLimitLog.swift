import Exchange
import Foundation
import Logging
import Synchronization

/// The log's side of the exchange's rate limits (runbooks/rate-limits.md): every wait for an endpoint's window to
/// reset is counted (`auction_agent_rate_limit_waits_total`), and logged as `rest.rate_limit_wait` at most once per
/// endpoint and reason every `intervalMs`, with how many waits that line stands for. A refusal by the exchange
/// (10006, 429) is a warning; pacing within the budget is a notice.
final class RateLimitLog: Sendable {
    static let intervalMs: Int64 = 10_000

    private struct Entry {
        var loggedAt: Int64?
        var unlogged: Int
    }
    private let logger: Logger
    private let entries = Mutex([String: Entry]())

    init(logger: Logger) { self.logger = logger }

    func note(_ w: RateLimitWait) {
        let key = "\(w.path) \(w.reason.rawValue)"
        let waits: Int? = entries.withLock { e in
            var entry = e[key] ?? Entry(loggedAt: nil, unlogged: 0)
            entry.unlogged += 1
            defer { e[key] = entry }
            if let last = entry.loggedAt, w.at - last < Self.intervalMs { return nil }
            let n = entry.unlogged
            entry.loggedAt = w.at
            entry.unlogged = 0
            return n
        }
        guard let waits else { return }
        let metadata: Logger.Metadata = [
            "event": "rest.rate_limit_wait", "endpoint": "\(w.path)", "reason": "\(w.reason.rawValue)",
            "wait_ms": "\(w.waitMs)", "remaining": "\(w.remaining)", "limit": "\(w.limit)", "waits": "\(waits)",
        ]
        switch w.reason {
        case .refused:
            logger.warning(
                "the exchange refused \(w.path) for its rate limit; waiting \(w.waitMs) ms for the reset",
                metadata: metadata)
        case .exhausted, .reserve:
            logger.notice(
                "\(w.path): \(w.remaining) of \(w.limit) calls left in the window; waiting \(w.waitMs) ms for its reset",
                metadata: metadata)
        }
    }
}

import Synchronization

/// Bybit's rate limits as its replies state them, per endpoint, for one account: the calls left in the current window
/// (`X-Bapi-Limit-Status`), the window's size (`X-Bapi-Limit`) and when it resets (`X-Bapi-Limit-Reset-Timestamp`, the
/// exchange's ms). Shared by every client that calls with the account's key (the order lane's and the protective
/// lane's), since the exchange counts them together.
///
/// A call takes one from its endpoint's budget before it leaves. A client configured with a reserve
/// (`BybitRESTConfig.reserveCalls`) does not spend the last calls of a window: it waits for the reset, so that stops,
/// cancels and exits always find some left. A call that finds none left waits for the reset too, rather than being
/// refused with 10006 and extending the storm.
public final class RateBudget: Sendable {
    private struct State {
        var limits: [String: RateLimitStatus] = [:]
        /// The last wait, per endpoint: why and until when.
        var waits: [String: RateLimitWait] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    /// What the last reply of `path` said.
    public func record(_ path: String, _ status: RateLimitStatus) {
        state.withLock { $0.limits[path] = status }
    }

    /// The exchange refused a call of `path` (10006 or HTTP 429) until `resetAt`: no call of it leaves before then.
    public func exhausted(_ path: String, until resetAt: Int64) {
        state.withLock { s in
            var status = s.limits[path] ?? RateLimitStatus(remaining: 0, limit: 0, resetAt: resetAt)
            status.remaining = 0
            status.resetAt = max(status.resetAt, resetAt)
            s.limits[path] = status
        }
    }

    /// Takes one call of `path` at `now` (the exchange's ms), keeping `reserve` calls of the window unspent; returns 0
    /// when the call may leave, or how long to wait (ms) for the window's reset.
    public func take(_ path: String, reserve: Int, now: Int64) -> Int64 {
        state.withLock { s in
            guard var status = s.limits[path] else { return 0 }
            // In a new window the reserve does not hold the call back: its count is not known until the reply says.
            guard now >= status.resetAt || status.remaining > reserve else { return status.resetAt - now }
            status.remaining = max(0, status.left(at: now) - 1)
            s.limits[path] = status
            return 0
        }
    }

    /// Notes a wait (for `atctl health` and the log).
    public func noteWait(_ wait: RateLimitWait) {
        state.withLock { $0.waits[wait.path] = wait }
    }

    /// The last status seen for `path`.
    public func status(_ path: String) -> RateLimitStatus? { state.withLock { $0.limits[path] } }

    /// Every endpoint's last status.
    public var all: [String: RateLimitStatus] { state.withLock { $0.limits } }

    /// The last wait of each endpoint.
    public var waits: [RateLimitWait] { state.withLock { Array($0.waits.values) } }
}

extension RateLimitStatus {
    /// Calls left at `now` (the exchange's ms): the window's size once its reset has passed (when known).
    public func left(at now: Int64) -> Int { now >= resetAt && limit > 0 ? limit : remaining }
}

/// A call that waited for its endpoint's window to reset.
public struct RateLimitWait: Sendable, Hashable {
    public enum Reason: String, Sendable {
        /// The exchange refused the call (retCode 10006 or HTTP 429).
        case refused
        /// The window had no calls left.
        case exhausted
        /// The window's last calls are kept for protective calls.
        case reserve
    }
    public var path: String
    public var reason: Reason
    /// How long (ms).
    public var waitMs: Int64
    /// When the wait began (local wall ms).
    public var at: Int64
    /// Calls left in the window and its size, as last seen.
    public var remaining: Int
    public var limit: Int

    public init(path: String, reason: Reason, waitMs: Int64, at: Int64, remaining: Int, limit: Int) {
        self.path = path
        self.reason = reason
        self.waitMs = waitMs
        self.at = at
        self.remaining = remaining
        self.limit = limit
    }
}

/// Keep-alive and reconnection of a Bybit WebSocket (docs/BYBIT.md, "WebSocket streams").
public struct StreamSettings: Sendable {
    /// `wss://stream.bybit.com/v5/public/linear`, the private URL, or the simulator's.
    public var url: String
    /// A `ping` op this often.
    public var pingIntervalMs: Int64 = 20_000
    /// No data and no pong for this long: the connection is dead.
    public var deadAfterMs: Int64 = 30_000
    /// Reconnect back-off: first delay, cap (jitter added).
    public var reconnectBaseMs: Int64 = 500
    public var reconnectCapMs: Int64 = 60_000
    /// Largest message accepted.
    public var maxMessageBytes = 4 << 20

    public init(url: String) { self.url = url }

    /// The delay before reconnect attempt `n` (1-based): `base × 2^(n-1)` capped, then 50–100 % of it.
    public func reconnectDelay(attempt: Int, random: Double) -> Int64 {
        let raw = min(reconnectCapMs, reconnectBaseMs << Int64(min(max(attempt - 1, 0), 20)))
        return raw / 2 + Int64(Double(raw / 2) * min(max(random, 0), 1))
    }
}

/// What a stream reports besides its data.
public enum StreamStatus: Sendable, Hashable {
    case connecting(attempt: Int)
    case connected
    /// Subscriptions acknowledged (and, for the private stream, authenticated).
    case ready
    case disconnected(reason: String)
    /// Data may be missing between these times (ms): from the last message before a disconnect to the first
    /// message after the reconnect.
    case gap(from: Int64, to: Int64)
    /// A message that did not parse; counted, never fatal.
    case malformed(String)
}

/// Faults the simulator injects, switchable per test and at run time (`POST /sim/faults`).
public struct SimFaults: Sendable, Hashable {
    /// The next N REST replies carry this retCode (10006, 10002, 10016, ...) instead of the real answer.
    public var failNextRetCode: Int?
    public var failNextCount = 0
    /// The next N REST replies are this HTTP status (403, 429, 500, 503) with no envelope.
    public var failNextHTTPStatus: Int?
    public var failNextHTTPCount = 0
    /// Delay every REST reply by this long (ms) — with a short client timeout, a lost reply.
    public var replyDelayMs: Int64 = 0
    /// Process the next N requests but drop the reply (the client sees a timeout; the order exists).
    public var dropRepliesCount = 0
    /// Reject every new order with retCode 110007 (insufficient balance).
    public var rejectOrders = false
    /// Report every execution twice on the private stream.
    public var duplicateExecutions = false
    /// Server clock skew (ms) applied to the recv-window check and /v5/market/time.
    public var clockSkewMs: Int64 = 0
    /// WebSockets go silent: no data, no pongs (the client must declare them dead).
    public var stallWebSockets = false
    /// The private streams are cut: open ones are dropped and new ones closed at once, while the venue keeps
    /// trading (fills, a triggered stop, a cancel happen and are only in REST afterwards).
    public var cutPrivateStreams = false
    /// The private streams stay connected but go silent (no data, no pongs, no auth answer): the client must
    /// declare them dead, and learn what happened meanwhile from REST.
    public var stallPrivateStreams = false
    /// Process the next N order creates but drop their replies (every other call answers).
    public var dropCreateRepliesCount = 0
    /// Process the next N order creates at once but hold their replies (a hung reply: the order is live at the
    /// exchange while its create call waits), until `POST /sim/release` or `holdReplyMs` has passed.
    public var holdCreateRepliesCount = 0
    public var holdReplyMs: Int64 = 15_000
    /// Refuse every `trading-stop` (retCode 10001), as the exchange does for a stop it will not take.
    public var rejectTradingStop = false
    /// Private `auth` is refused; the socket stays open and silent, as Bybit's does.
    public var failPrivateAuth = false
    /// The book behind the top holds only this many lots for the next `thinBookCount` orders that take liquidity
    /// (0: every one while set): a market order fills that much and the rest is cancelled.
    public var thinBookLots: Int64?
    public var thinBookCount = 0

    public init() {}
}

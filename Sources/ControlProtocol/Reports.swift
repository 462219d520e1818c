/// The results of the control commands. Prices and quantities are decimal strings in the instrument's own
/// precision (`"64250.1"`, `"0.125"`), never binary floating point; money is USDT as a number.

/// The open position (`positions`, and inside `status`).
public struct PositionReport: Codable, Sendable, Hashable {
    /// `long` or `short`.
    public var side: String
    public var qty: String
    public var setup: String
    public var entryPrice: String
    public var entryTime: String
    public var stop: String
    public var tp1: String?
    public var tp2: String?
    public var tp1Done: Bool
    public var unrealizedPnL: Double
    /// An exit of the whole position is working.
    public var closing: Bool

    public init(
        side: String, qty: String, setup: String, entryPrice: String, entryTime: String, stop: String, tp1: String?,
        tp2: String?, tp1Done: Bool, unrealizedPnL: Double, closing: Bool
    ) {
        self.side = side
        self.qty = qty
        self.setup = setup
        self.entryPrice = entryPrice
        self.entryTime = entryTime
        self.stop = stop
        self.tp1 = tp1
        self.tp2 = tp2
        self.tp1Done = tp1Done
        self.unrealizedPnL = unrealizedPnL
        self.closing = closing
    }
}

/// A working order (`orders`).
public struct OrderReport: Codable, Sendable, Hashable {
    /// The deterministic orderLinkId.
    public var id: String
    public var side: String
    public var qty: String
    /// `market` or `limit`.
    public var type: String
    public var price: String?
    public var reduceOnly: Bool
    /// `entry:breakin`, `exit:stop`, ...
    public var purpose: String
    public var decidedAt: String

    public init(
        id: String, side: String, qty: String, type: String, price: String?, reduceOnly: Bool, purpose: String,
        decidedAt: String
    ) {
        self.id = id
        self.side = side
        self.qty = qty
        self.type = type
        self.price = price
        self.reduceOnly = reduceOnly
        self.purpose = purpose
        self.decidedAt = decidedAt
    }
}

/// The account (`pnl`).
public struct PnLReport: Codable, Sendable, Hashable {
    public var equity: Double
    public var cash: Double
    public var unrealizedPnL: Double
    /// Equity now less equity at 00:00 UTC (fees and funding included).
    public var todayPnL: Double
    public var dayStartEquity: Double
    /// The loss at which the halting kill switch (`risk.max_daily_loss_pct`) fires today (a negative number); nil: off.
    public var killSwitchLoss: Double?
    /// How much more may be lost today before it fires; nil: off.
    public var killSwitchDistance: Double?
    public var killSwitchActive: Bool
    /// The UTC day's realised P&L, fees and funding included (what `risk.max_daily_loss` measures).
    public var realizedToday: Double?
    /// `risk.max_daily_loss` as a negative number; nil: off.
    public var dailyLossLimit: Double?
    /// How much more may be realised as loss today before entries stop; nil: off.
    public var dailyLossDistance: Double?
    /// The daily loss limit was reached: no new entries until 00:00 UTC.
    public var dailyLossLimitReached: Bool?
    public var feesPaid: Double
    public var fundingPaid: Double
    public var roundTrips: Int
    public var winningRoundTrips: Int
    public var netPnLAllTime: Double

    public init(
        equity: Double, cash: Double, unrealizedPnL: Double, todayPnL: Double, dayStartEquity: Double,
        killSwitchLoss: Double?, killSwitchDistance: Double?, killSwitchActive: Bool, realizedToday: Double,
        dailyLossLimit: Double?, dailyLossDistance: Double?, dailyLossLimitReached: Bool, feesPaid: Double,
        fundingPaid: Double, roundTrips: Int, winningRoundTrips: Int, netPnLAllTime: Double
    ) {
        self.equity = equity
        self.cash = cash
        self.unrealizedPnL = unrealizedPnL
        self.todayPnL = todayPnL
        self.dayStartEquity = dayStartEquity
        self.killSwitchLoss = killSwitchLoss
        self.killSwitchDistance = killSwitchDistance
        self.killSwitchActive = killSwitchActive
        self.realizedToday = realizedToday
        self.dailyLossLimit = dailyLossLimit
        self.dailyLossDistance = dailyLossDistance
        self.dailyLossLimitReached = dailyLossLimitReached
        self.feesPaid = feesPaid
        self.fundingPaid = fundingPaid
        self.roundTrips = roundTrips
        self.winningRoundTrips = winningRoundTrips
        self.netPnLAllTime = netPnLAllTime
    }
}

/// The value area of the last closed minute (`va`).
public struct ValueAreaReport: Codable, Sendable, Hashable {
    /// The minute (its start, UTC).
    public var minute: String
    public var close: String
    public var poc: String?
    public var vah: String?
    public var val: String?
    public var valid: Bool
    public var binWidth: String
    public var coverage: Double?
    /// Minutes of history in the window (the warm-up counts up to the window length).
    public var minutesInWindow: Int
    /// Share of the window's volume known only from the exchange's 1-minute candles (a warm start): 0 when every
    /// minute came from trades. Entries wait while it is above `agent.max_approximate_va_share`.
    public var approximateShare: Double
    /// Minutes of the window known only from candles.
    public var approximateMinutes: Int
    /// How the minute's order flow was measured: `quote_rule` or `bvc` (nil from an agent before it was reported).
    public var orderFlowMethod: String?

    public init(
        minute: String, close: String, poc: String?, vah: String?, val: String?, valid: Bool, binWidth: String,
        coverage: Double?, minutesInWindow: Int, approximateShare: Double = 0, approximateMinutes: Int = 0,
        orderFlowMethod: String? = nil
    ) {
        self.minute = minute
        self.close = close
        self.poc = poc
        self.vah = vah
        self.val = val
        self.valid = valid
        self.binWidth = binWidth
        self.coverage = coverage
        self.minutesInWindow = minutesInWindow
        self.approximateShare = approximateShare
        self.approximateMinutes = approximateMinutes
        self.orderFlowMethod = orderFlowMethod
    }
}

/// One minute's decision (`signals`).
public struct SignalReport: Codable, Sendable, Hashable {
    public var minute: String
    /// `ENTER_LONG`, `FLIP_SHORT`, `EXIT`, ... or `HOLD`.
    public var action: String
    /// The setup taken or the veto's reason code (`observing`, `cooldown`, `stale_data`, ...).
    public var reason: String
    /// The setups detected this minute (`breakin_long`, ...).
    public var detected: [String]
    /// The acceptance state above VAH and below VAL (`running 2 at 64100.0`, `used`, `-`).
    public var acceptanceAbove: String
    public var acceptanceBelow: String

    public init(
        minute: String, action: String, reason: String, detected: [String], acceptanceAbove: String,
        acceptanceBelow: String
    ) {
        self.minute = minute
        self.action = action
        self.reason = reason
        self.detected = detected
        self.acceptanceAbove = acceptanceAbove
        self.acceptanceBelow = acceptanceBelow
    }
}

/// Health (`health`, and its summary inside `status`).
/// One endpoint's rate limit at the exchange (Bybit counts per endpoint and account, per second).
public struct RateLimitReport: Codable, Sendable, Hashable {
    /// The endpoint's path (`/v5/order/create`).
    public var endpoint: String
    /// Calls left in the current window (the window's size once it has reset) and the window's size.
    public var remaining: Int
    public var limit: Int
    /// The last wait for the window's reset: `refused` (the exchange answered 10006 or 429), `exhausted` (no call
    /// left) or `reserve` (the last calls are kept for protective ones); nil: none since the start.
    public var lastWait: String?
    public var lastWaitMs: Int64?
    public var lastWaitAgoMs: Int64?

    public init(
        endpoint: String, remaining: Int, limit: Int, lastWait: String? = nil, lastWaitMs: Int64? = nil,
        lastWaitAgoMs: Int64? = nil
    ) {
        self.endpoint = endpoint
        self.remaining = remaining
        self.limit = limit
        self.lastWait = lastWait
        self.lastWaitMs = lastWaitMs
        self.lastWaitAgoMs = lastWaitAgoMs
    }
}

public struct HealthReport: Codable, Sendable, Hashable {
    /// `healthy`, `degraded` or `unhealthy`.
    public var status: String
    public var reasons: [String]
    /// Wall-clock time since the last market message (trade or quote).
    public var marketDataAgeMs: Int64?
    public var publicStream: String
    /// Seconds since the venue last answered (shadow and live), nil when the mode uses none.
    public var lastVenueSuccessAgoMs: Int64?
    public var databaseWritable: Bool
    /// How late the engine loop ran its last clock tick.
    public var loopLagMs: Int64
    /// Local clock less market time at the last message (positive: the data is that old when it arrives).
    public var clockOffsetMs: Int64?
    public var reconnects: Int
    public var gaps: Int
    public var watchdog: String
    /// Records the database refused, held in memory until it takes them (nil from an agent before this field).
    public var heldRecords: Int?
    /// Free space on the state directory's disk, bytes (nil: not read yet).
    public var diskFreeBytes: Int64?
    /// The exchange's rate limits per endpoint, as its replies state them (shadow and live; nil: none).
    public var rateLimits: [RateLimitReport]?

    public init(
        status: String, reasons: [String], marketDataAgeMs: Int64?, publicStream: String, lastVenueSuccessAgoMs: Int64?,
        databaseWritable: Bool, loopLagMs: Int64, clockOffsetMs: Int64?, reconnects: Int, gaps: Int, watchdog: String,
        heldRecords: Int? = nil, diskFreeBytes: Int64? = nil, rateLimits: [RateLimitReport]? = nil
    ) {
        self.rateLimits = rateLimits
        self.status = status
        self.reasons = reasons
        self.marketDataAgeMs = marketDataAgeMs
        self.publicStream = publicStream
        self.lastVenueSuccessAgoMs = lastVenueSuccessAgoMs
        self.databaseWritable = databaseWritable
        self.loopLagMs = loopLagMs
        self.clockOffsetMs = clockOffsetMs
        self.reconnects = reconnects
        self.gaps = gaps
        self.watchdog = watchdog
        self.heldRecords = heldRecords
        self.diskFreeBytes = diskFreeBytes
    }
}

/// An alert (`alerts`).
public struct AlertReport: Codable, Sendable, Hashable {
    public var time: String
    public var kind: String
    /// `info`, `warning` or `critical`.
    public var severity: String
    public var message: String

    public init(time: String, kind: String, severity: String, message: String) {
        self.time = time
        self.kind = kind
        self.severity = severity
        self.message = message
    }
}

/// Everything `atctl status` shows on one screen.
public struct StatusReport: Codable, Sendable, Hashable {
    public var environment: String
    public var mode: String
    public var state: String
    /// Why the agent is in this state (`operator_flatten`, `kill_switch`, `warming 120/240`, ...).
    public var stateReason: String
    public var stateSince: String
    public var activated: Bool
    public var requireManualActivation: Bool
    public var marketTime: String?
    public var position: PositionReport?
    public var workingOrders: Int
    public var pnl: PnLReport
    /// Risk to the stop over available margin (docs/SPEC.md §11 heat); nil when no margin is free (the position uses it all).
    public var heat: Double?
    public var valueArea: ValueAreaReport?
    public var lastSignal: SignalReport?
    public var lastTrade: String?
    public var health: HealthReport
    public var uptimeSeconds: Int64
    public var version: String
    public var pid: Int32

    public init(
        environment: String, mode: String, state: String, stateReason: String, stateSince: String, activated: Bool,
        requireManualActivation: Bool, marketTime: String?, position: PositionReport?, workingOrders: Int,
        pnl: PnLReport,
        heat: Double?, valueArea: ValueAreaReport?, lastSignal: SignalReport?, lastTrade: String?, health: HealthReport,
        uptimeSeconds: Int64, version: String, pid: Int32
    ) {
        self.environment = environment
        self.mode = mode
        self.state = state
        self.stateReason = stateReason
        self.stateSince = stateSince
        self.activated = activated
        self.requireManualActivation = requireManualActivation
        self.marketTime = marketTime
        self.position = position
        self.workingOrders = workingOrders
        self.pnl = pnl
        self.heat = heat
        self.valueArea = valueArea
        self.lastSignal = lastSignal
        self.lastTrade = lastTrade
        self.health = health
        self.uptimeSeconds = uptimeSeconds
        self.version = version
        self.pid = pid
    }
}

/// The answer of a command that changes something.
public struct ActionReport: Codable, Sendable, Hashable {
    /// The state after the command.
    public var state: String
    public var message: String
    /// What was done, in order (flatten: cancels, the close order, the confirmation).
    public var steps: [String]

    public init(state: String, message: String, steps: [String] = []) {
        self.state = state
        self.message = message
        self.steps = steps
    }
}

/// `version`.
public struct VersionReport: Codable, Sendable, Hashable {
    public var version: String
    public var environment: String
    public var mode: String
    public var pid: Int32

    public init(version: String, environment: String, mode: String, pid: Int32) {
        self.version = version
        self.environment = environment
        self.mode = mode
        self.pid = pid
    }
}

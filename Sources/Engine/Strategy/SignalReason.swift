/// Why a minute's decision did what it did: the `reason` column of signals.csv, the `reason` of the stored signals,
/// the `signal.action` log event and `atctl signals` (docs/STRATEGY.md, "Actions and reason codes"). Its
/// description is the code written there, so every output keeps its bytes.
public enum SignalReason: Sendable, Hashable, CustomStringConvertible {
    /// An entry by this setup.
    case entry(Setup)
    /// A breakout entered on its retest (docs/SPEC.md §8, retest mode).
    case breakoutRetest
    /// An exit decided at the close.
    case exit(ExitReason)
    /// No order, for this reason.
    case hold(HoldReason)
    /// No entry: the agent vetoed it (its state, its data, its venue).
    case vetoed(EntryVeto)

    public var description: String {
        switch self {
        case .entry(let s): s.rawValue
        case .breakoutRetest: "breakout_retest"
        case .exit(let r): r.rawValue
        case .hold(let r): r.rawValue
        case .vetoed(let v): v.rawValue
        }
    }
}

/// Why a minute closed without an order (docs/STRATEGY.md).
public enum HoldReason: String, Sendable, Hashable, CaseIterable {
    case noSignal = "no_signal"
    case warmup
    case invalidVA = "invalid_va"
    case retestPending = "retest_pending"
    case conflictingSignals = "conflicting_signals"
    case killSwitch = "kill_switch"
    case dailyLossLimit = "daily_loss_limit"
    case staleData = "stale_data"
    case entryWorking = "entry_working"
    case inPosition = "in_position"
    case exiting
    case cooldown
    case targetBehindEntry = "target_behind_entry"
    case invalidStop = "invalid_stop"
    case sizeBelowMin = "size_below_min"
}

/// Why the agent vetoes entries beyond the Engine's own rules (docs/OPERATIONS.md): its state, market data that
/// went stale, a value area drawn mostly from candles, the exchange's private stream not authenticated.
public enum EntryVeto: String, Sendable, Hashable, Codable, CaseIterable {
    case staleFeed = "stale_feed"
    case approximateVA = "approximate_va"
    case privateStream = "private_stream"
    /// The agent's database refuses writes: its records wait in memory and no new position is opened until they
    /// are written.
    case database
    case warmup
    case observing
    case paused
    case halted
    case starting
    case recovering
    case stopping
}

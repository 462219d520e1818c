import AgentConfig
import AgentSupport
import Engine

/// The lifecycle states of the agent (docs/DESIGN.md, "Modes").
public enum AgentState: String, Sendable, Codable, CaseIterable {
    case starting, recovering, warming, observing, active, paused, flattening, halted, stopping
}

/// Why trading flattens or halts. The raw value begins the supervisor's reason (`position_mismatch: the exchange
/// holds …`), which is stored with each transition and snapshot, logged and shown, so the cause survives a restart
/// and every output keeps its bytes.
public enum HaltCause: String, Sendable, CaseIterable {
    case positionMismatch = "position_mismatch"
    case venueUnreachable = "venue_unreachable"
    case adl
    case liquidation
    case delivery
    case killSwitch = "kill_switch"
    case unprotectedPosition = "unprotected_position"
    case operatorFlatten = "operator_flatten"
    case operatorFlattenDirect = "operator_flatten_direct"
    /// The database refused writes until the journal of held records reached its bound.
    case databaseUnwritable = "database_unwritable"

    /// The exchange itself closed (part of) the position for `reason`: auto-deleveraging, liquidation or delivery.
    init?(closedByExchange reason: ExitReason) {
        switch reason {
        case .adl: self = .adl
        case .liquidation: self = .liquidation
        case .delivery: self = .delivery
        default: return nil
        }
    }

    /// The cause a reason begins with (a reason read back from a snapshot).
    public init?(reason: String) { self.init(rawValue: String(reason.prefix { $0 != ":" })) }

    /// The reason text: the cause, then what happened.
    public func reason(_ detail: String? = nil) -> String { detail.map { "\(rawValue): \($0)" } ?? rawValue }
}

/// Where a stream connection stands; its description is what health, `atctl status` and alerts say.
public enum StreamState: Sendable, Equatable, CustomStringConvertible {
    case notStarted
    case connecting(attempt: Int)
    /// Connected, not yet subscribed.
    case connected
    /// The private stream: connected, its `auth` not (yet) accepted.
    case unauthenticated
    /// Subscribed (and, for the private stream, authenticated): data flows.
    case ready
    case disconnected

    public var description: String {
        switch self {
        case .notStarted: "not started"
        case .connecting(let n): "connecting (attempt \(n))"
        case .connected: "connected"
        case .unauthenticated: "connected, not authenticated"
        case .ready: "ready"
        case .disconnected: "disconnected"
        }
    }
}

/// One change of state, as logged and stored.
public struct Transition: Sendable, Hashable {
    public var from: AgentState
    public var to: AgentState
    public var reason: String
}

/// Why the supervisor refused a request.
public struct SupervisorRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The supervisor's state machine:
///
///     starting → recovering → warming → observing → active ↔ paused
///     any running state → flattening → halted → (resume) active;  any → stopping
///
/// Pure: the daemon feeds it facts (window warm, flat, kill switch, operator commands) and persists every
/// transition it returns. `activated` remembers an operator's (or the config's) activation across restarts.
public struct Supervisor: Sendable {
    public private(set) var state: AgentState = .starting
    public private(set) var reason = "process started"
    /// The operator activated trading (or `require_manual_activation` is off); survives restarts.
    public private(set) var activated: Bool
    public let requireManualActivation: Bool
    private var beforeStop: (AgentState, String)?

    public init(requireManualActivation: Bool, activated: Bool = false) {
        self.requireManualActivation = requireManualActivation
        self.activated = activated || !requireManualActivation
    }

    private mutating func move(_ to: AgentState, _ why: String) -> Transition? {
        guard to != state || why != reason else { return nil }
        let t = Transition(from: state, to: to, reason: why)
        state = to
        reason = why
        return t
    }

    /// starting → recovering.
    public mutating func beginRecovery() -> Transition? {
        move(.recovering, "loading snapshot and rebuilding the window")
    }

    /// After recovery: back to the state the snapshot held where that is safe. A halt survives restarts; an
    /// interrupted flatten resumes; active and paused come back once the window is warm.
    public mutating func recovered(previous: AgentState?, previousReason: String?, warm: Bool) -> Transition? {
        switch previous {
        case .halted?:
            return move(.halted, previousReason ?? "halted before the restart")
        case .flattening?:
            return move(.flattening, "resuming the flatten interrupted by the restart")
        case .paused?:
            return warm
                ? move(.paused, previousReason ?? "paused before the restart") : move(.warming, "window not yet full")
        default:
            return warm ? afterWarm() : move(.warming, "window not yet full")
        }
    }

    /// The window filled up (or was already full).
    public mutating func windowWarm() -> Transition? {
        guard state == .warming else { return nil }
        return afterWarm()
    }

    private mutating func afterWarm() -> Transition? {
        if activated {
            return move(
                .active, requireManualActivation ? "activated by the operator" : "warm; manual activation not required")
        }
        return move(.observing, "warm; waiting for `atctl activate`")
    }

    /// `atctl activate`.
    public mutating func activate() throws(SupervisorRefusal) -> Transition? {
        switch state {
        case .observing:
            activated = true
            return move(.active, "activated by the operator")
        case .active: return nil
        case .warming:
            throw SupervisorRefusal(
                message: "still warming up (\(reason)); activation is possible once the window is full")
        default:
            throw SupervisorRefusal(
                message: "cannot activate while \(state.rawValue) (\(reason))\(state == .halted ? "; use resume" : "")")
        }
    }

    /// `atctl pause`: no new entries; exits are still managed.
    public mutating func pause() throws(SupervisorRefusal) -> Transition? {
        switch state {
        case .active, .observing: return move(.paused, "paused by the operator")
        case .paused: return nil
        default: throw SupervisorRefusal(message: "cannot pause while \(state.rawValue) (\(reason))")
        }
    }

    /// `atctl resume`: leaves paused, or halted once its cause is cleared (`blocker` says what still stands).
    public mutating func resume(blocker: String?) throws(SupervisorRefusal) -> Transition? {
        switch state {
        case .paused, .halted:
            if let blocker { throw SupervisorRefusal(message: "cannot resume: \(blocker)") }
            activated = true
            return move(.active, "resumed by the operator")
        case .active: return nil
        default: throw SupervisorRefusal(message: "cannot resume while \(state.rawValue) (\(reason))")
        }
    }

    /// Kill switch, an unprotected position or `atctl flatten`: close everything, then halt.
    public mutating func beginFlatten(_ cause: HaltCause) -> Transition? {
        guard state != .stopping else { return nil }
        if state == .flattening { return nil }
        return move(.flattening, cause.reason())
    }

    /// The position is flat and nothing works: flattening → halted, keeping the cause as the reason.
    public mutating func flat() -> Transition? {
        guard state == .flattening else { return nil }
        return move(.halted, reason)
    }

    /// Halt without flattening (a mismatch that must not be traded through).
    public mutating func halt(_ cause: HaltCause, _ detail: String? = nil) -> Transition? {
        move(.halted, cause.reason(detail))
    }

    /// Why the agent is flattening or halted (nil in the other states).
    public var haltCause: HaltCause? { state == .halted || state == .flattening ? HaltCause(reason: reason) : nil }

    /// SIGTERM. The state before it is what a restart resumes.
    public mutating func stop(_ why: String) -> Transition? {
        if state != .stopping { beforeStop = (state, reason) }
        return move(.stopping, why)
    }

    /// The state a snapshot keeps: while stopping, the state the stop interrupted (a halt must survive a restart).
    public var persistentState: (state: AgentState, reason: String) {
        state == .stopping ? (beforeStop ?? (.starting, reason)) : (state, reason)
    }

    /// Restores the remembered activation (from a snapshot).
    public mutating func restoreActivation(_ value: Bool) { activated = activated || value }
}

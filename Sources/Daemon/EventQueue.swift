import AgentConfig
public import AgentSupport
public import ControlProtocol
public import Engine
public import ExchangeStreams
public import Foundation

/// An operator's command on its way to the engine, with the way back.
public struct ControlCall: Sendable {
    public var request: ControlRequest
    public var command: ControlCommand
    public var peerUid: UInt32
    /// Called once with the reply line (without the newline).
    public var reply: @Sendable (Data) -> Void

    public init(
        request: ControlRequest, command: ControlCommand, peerUid: UInt32, reply: @escaping @Sendable (Data) -> Void
    ) {
        self.request = request
        self.command = command
        self.peerUid = peerUid
        self.reply = reply
    }
}

/// What enters the engine: every input on one ordered stream (docs/DESIGN.md, "Data flow").
public enum EngineInput: Sendable {
    case trades([TradeEvent], wall: WallTime)
    case quote(QuoteEvent, wall: WallTime)
    case stream(StreamStatus, wall: WallTime)
    case tick(wall: WallTime)
    case command(ControlCall)
    /// What the exchange said (shadow mode's testnet mirror).
    case venue(VenueReport, wall: WallTime)
    /// Graceful stop: cancel working entries, write the last snapshot, then call back.
    case stop(reason: String, done: @Sendable () -> Void)
}

/// A multi-producer, single-consumer queue that blocks the consumer while empty.
public final class EventQueue: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var items: [EngineInput] = []

    public init() {}

    public func put(_ item: EngineInput) {
        condition.lock()
        items.append(item)
        condition.signal()
        condition.unlock()
    }

    /// Takes everything queued, waiting up to `timeoutMs` for the first item.
    public func takeAll(timeoutMs: Int) -> [EngineInput] {
        condition.lock()
        defer { condition.unlock() }
        if items.isEmpty {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(timeoutMs) / 1000))
        }
        let out = items
        items.removeAll(keepingCapacity: items.count < 65_536)
        return out
    }
}

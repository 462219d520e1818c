/// Lets one WebSocket of this process open at a time.
///
/// Opening a connection builds swift-websocket's HTTP-upgrade pipeline on a NIO thread, and the first build in a
/// process instantiates its generic types in the Swift runtime. Two streams opening at the same moment on two NIO
/// threads (shadow and live open the public and the private stream together at start) crashed the agent, rarely, in
/// that instantiation (`swift_getTypeByMangledName`, a null dereference). Opening takes milliseconds, so the
/// streams take turns: a stream enters before it connects and leaves once connected, once the attempt failed, or after
/// the hold limit its runner sets (a handshake the server never answers must not keep the other stream waiting).
///
/// `leave` is idempotent and ignores a ticket that is not the holder's; a waiter whose task is cancelled stops
/// waiting without taking the gate.
actor OpeningGate {
    static let shared = OpeningGate()

    private var holder: UInt64?
    private var issued: UInt64 = 0
    private var waiting: [(ticket: UInt64, resume: CheckedContinuation<Void, Never>)] = []
    private var cancelled: Set<UInt64> = []

    /// Whether a stream holds the gate now (for tests).
    var isHeld: Bool { holder != nil }
    /// How many streams wait for their turn (for tests).
    var waiters: Int { waiting.count }

    /// Waits for this stream's turn and returns its ticket for `leave`. A cancelled task returns at once, without
    /// the gate (its `leave` does nothing).
    func enter() async -> UInt64 {
        issued += 1
        let ticket = issued
        if holder == nil {
            holder = ticket
            return ticket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                if cancelled.remove(ticket) != nil {
                    c.resume()
                } else {
                    waiting.append((ticket, c))
                }
            }
        } onCancel: {
            Task { await self.stopWaiting(ticket) }
        }
        return ticket
    }

    /// Gives the turn to the next waiting stream; does nothing unless `ticket` holds the gate.
    func leave(_ ticket: UInt64) {
        guard holder == ticket else { return }
        if waiting.isEmpty {
            holder = nil
        } else {
            let next = waiting.removeFirst()
            holder = next.ticket
            next.resume.resume()
        }
    }

    private func stopWaiting(_ ticket: UInt64) {
        if let i = waiting.firstIndex(where: { $0.ticket == ticket }) {
            waiting.remove(at: i).resume.resume()
        } else if holder != ticket {
            // Cancelled before it queued: `enter` sees this and returns at once.
            cancelled.insert(ticket)
        }
    }
}

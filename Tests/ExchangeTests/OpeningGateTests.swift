import Engine
import Exchange
import Foundation
import Testing

@testable import ExchangeStreams

/// The gate that lets one WebSocket of the process open at a time (Sources/ExchangeStreams/OpeningGate.swift).
@Suite(.tags(.unit)) struct OpeningGateTests {
    /// Waits until `gate` has `n` waiters (each waiter queues within a few scheduler turns).
    func waitForWaiters(_ gate: OpeningGate, _ n: Int) async {
        while await gate.waiters < n { await Task.yield() }
    }

    @Test func streamsTakeTurnsInArrivalOrder() async {
        let gate = OpeningGate()
        let first = await gate.enter()
        #expect(await gate.isHeld)
        let order = Inbox<Int>()
        let second = Task {
            let t = await gate.enter()
            order.add(2)
            return t
        }
        await waitForWaiters(gate, 1)
        let third = Task {
            let t = await gate.enter()
            order.add(3)
            await gate.leave(t)
        }
        await waitForWaiters(gate, 2)
        #expect(order.all.isEmpty)  // both wait while the first holds the gate
        await gate.leave(first)
        let secondTicket = await second.value
        #expect(order.all == [2])  // the third still waits for the second
        await gate.leave(secondTicket)
        await third.value
        #expect(order.all == [2, 3])
        #expect(await !gate.isHeld)
    }

    @Test func leavingTwiceOrWithAnotherTicketChangesNothing() async {
        let gate = OpeningGate()
        let first = await gate.enter()
        await gate.leave(first)
        let second = await gate.enter()
        await gate.leave(first)  // a stale ticket (the hold limit firing late): the second keeps the gate
        #expect(await gate.isHeld)
        await gate.leave(second)
        await gate.leave(second)
        #expect(await !gate.isHeld)
    }

    @Test func aCancelledWaiterStopsWaitingWithoutTakingTheGate() async {
        let gate = OpeningGate()
        let holder = await gate.enter()
        let waiter = Task { await gate.enter() }
        await waitForWaiters(gate, 1)
        waiter.cancel()
        let ticket = await waiter.value
        #expect(await gate.waiters == 0)
        await gate.leave(ticket)  // not the holder's: nothing happens
        #expect(await gate.isHeld)
        await gate.leave(holder)
        #expect(await !gate.isHeld)
    }

    @Test func aTaskCancelledBeforeItQueuesDoesNotWait() async {
        let gate = OpeningGate()
        let holder = await gate.enter()
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await gate.enter()
        }
        _ = await waiter.value
        #expect(await gate.waiters == 0)
        await gate.leave(holder)
        #expect(await !gate.isHeld)
    }
}

@Suite(.tags(.integration), .serialized) struct ManyStreamsTests {
    /// Many streams started at the same moment all connect and subscribe (they open one at a time).
    @Test func manyStreamsOpenedAtOnceAllBecomeReady() async throws {
        let sim = try SimFixture(minutes: 2)
        let inboxes = (0..<8).map { _ in Inbox<PublicMessage>() }
        let tasks = inboxes.map { startPublicStream(sim, into: $0) }
        let (privateInbox, privateTask) = startPrivateStream(sim)
        defer {
            tasks.forEach { $0.cancel() }
            privateTask.cancel()
        }
        for inbox in inboxes { #expect(await inbox.wait { $0.allStatuses.contains(.ready) }) }
        #expect(await privateInbox.wait { $0.allStatuses.contains(.ready) })
        // (Whether the gate is free now is not asked: other suites' streams share the process's gate.)
    }
}

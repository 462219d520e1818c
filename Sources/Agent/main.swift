import AgentCLI
import AgentSupport

// A parent such as Foundation's `Process` may start us with SIGINT and SIGTERM blocked, and threads inherit the
// mask: unblock them here, on the main thread before any other thread exists. `run`'s service group handles them.
unblockStopSignals()
await runAuctionAgent()

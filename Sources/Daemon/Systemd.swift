import AgentConfig
import AgentSupport
import CSystemd
public import Foundation

/// systemd's notification protocol through libsystemd: `READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`.
/// Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.
public struct SystemdNotifier: Sendable {
    public let enabled: Bool
    /// The watchdog interval systemd asked for (`WatchdogSec=`), in microseconds; nil when none.
    public let watchdogUsec: UInt64?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        enabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
        var usec: UInt64 = 0
        // sd_watchdog_enabled checks WATCHDOG_USEC and that WATCHDOG_PID, when set, is this process.
        watchdogUsec = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }

    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard enabled else { return false }
        return sd_notify(0, state) > 0
    }
}

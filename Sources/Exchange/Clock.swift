import Foundation

/// Milliseconds since the epoch from the system clock.
@Sendable public func wallClockMillis() -> Int64 {
    Int64(Date().timeIntervalSince1970 * 1000)
}

/// Blocks the calling thread for `ms` milliseconds.
@Sendable public func sleepMillis(_ ms: Int64) {
    guard ms > 0 else { return }
    var remaining = ms
    while remaining > 0 {
        let chunk = min(remaining, 1_000)
        usleep(UInt32(chunk) * 1000)
        remaining -= chunk
    }
}

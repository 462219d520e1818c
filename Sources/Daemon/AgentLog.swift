import AgentConfig
import AgentSupport
import CSystemd
import Engine
import Exchange
public import Foundation
public import Logging
import Synchronization

/// Where the agent's log lines go: one JSON object per line on stdout, or, when stdout is connected to journald
/// (systemd sets `JOURNAL_STREAM` to its device and inode), the same fields as native journal fields through
/// `sd_journal_sendv`, so `journalctl -u auction-agent EVENT=order.filled` works.
///
/// Every line carries `ts`, `level`, `event`, `message`, `env`, `mode` and `state`, then the metadata with dotted
/// keys (`order.link_id`); in the journal the keys are upper-cased with dots as underscores (`ORDER_LINK_ID`).
/// Registered secrets are replaced by `[redacted]` wherever they would appear.
public final class LogSink: Sendable {
    public enum Output: Sendable { case jsonLines, journal }

    /// What every line carries besides its own fields.
    private struct Shared {
        var context: [(String, String)] = []
        var secrets: [String] = []
        var state = ""
        var level = Logger.Level.info
    }
    private let shared = Mutex(Shared())
    /// Held while one line is written, so lines from different threads never interleave.
    private let writing = Mutex(())
    public let output: Output
    /// Where JSON lines go (stdout unless a test says otherwise).
    private let fd: Int32

    public init(
        output: Output? = nil, fd: Int32 = 1, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.fd = fd
        self.output = output ?? (LogSink.stdoutIsJournal(environment) ? .journal : .jsonLines)
    }

    /// systemd's documented test: `JOURNAL_STREAM` names the device and inode of stdout.
    static func stdoutIsJournal(_ environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(1, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// Fields on every line (`env`, `mode`).
    public func setContext(_ fields: [(String, String)]) { shared.withLock { $0.context = fields } }

    /// The lowest level written (`agent.log_level`); a reload changes it for every logger at once.
    public var level: Logger.Level {
        get { shared.withLock { $0.level } }
        set { shared.withLock { $0.level = newValue } }
    }

    /// The level `agent.log_level` names (`debug`, `info`, `warning`).
    public static func level(named name: String) -> Logger.Level {
        switch name {
        case "debug": .debug
        case "warning": .warning
        default: .info
        }
    }

    /// The supervisor's state, on every line.
    public func setState(_ value: String) { shared.withLock { $0.state = value } }

    /// Values that must never be written (API keys and secrets).
    public func redact(_ values: [String]) {
        shared.withLock { $0.secrets.append(contentsOf: values.filter { $0.count >= 4 }) }
    }

    func write(level: Logger.Level, message: String, metadata: Logger.Metadata, label: String) {
        var fields: [(String, String)] = []
        var flat: [(String, String)] = []
        flatten(metadata, prefix: "", into: &flat)
        let event = flat.first { $0.0 == "event" }?.1 ?? label
        let (ctx, st, hidden) = shared.withLock { ($0.context, $0.state, $0.secrets) }
        fields.append(("ts", isoTime(wallClockMillis(), milliseconds: true)))
        fields.append(("level", level.rawValue))
        fields.append(("event", event))
        fields.append(("message", message))
        fields.append(contentsOf: ctx)
        fields.append(("state", st))
        for (k, v) in flat.sorted(by: { $0.0 < $1.0 }) where k != "event" { fields.append((k, v)) }
        if !hidden.isEmpty {
            fields = fields.map { (k, v) in
                (k, hidden.reduce(v) { $0.replacingOccurrences(of: $1, with: "[redacted]") })
            }
        }
        switch output {
        case .jsonLines: writeJSON(fields)
        case .journal: sendJournal(fields, level: level)
        }
    }

    private func flatten(_ metadata: Logger.Metadata, prefix: String, into out: inout [(String, String)]) {
        for (k, v) in metadata {
            let key = prefix.isEmpty ? k : "\(prefix).\(k)"
            switch v {
            case .string(let s): out.append((key, s))
            case .stringConvertible(let c): out.append((key, c.description))
            case .dictionary(let d): flatten(d, prefix: key, into: &out)
            case .array(let a): out.append((key, a.map { "\($0)" }.joined(separator: ",")))
            }
        }
    }

    private func writeJSON(_ fields: [(String, String)]) {
        var line = "{"
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { line += "," }
            line += jsonQuote(k) + ":" + jsonQuote(v)
        }
        line += "}\n"
        let bytes = Array(line.utf8)
        writing.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    break
                }
                offset += n
            }
        }
    }

    private func sendJournal(_ fields: [(String, String)], level: Logger.Level) {
        var entries: [String] = []
        for (k, v) in fields {
            switch k {
            case "message": entries.append("MESSAGE=\(v)")
            case "ts": continue  // the journal stamps its own time
            default: entries.append("\(journalKey(k))=\(v)")
            }
        }
        entries.append("PRIORITY=\(syslogPriority(level))")
        entries.append("SYSLOG_IDENTIFIER=auction-agent")
        // One buffer holds every field; the iovecs point into it only while it is borrowed.
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(entries.count)
        for e in entries {
            let start = storage.count
            storage.append(contentsOf: e.utf8)
            ranges.append(start..<storage.count)
        }
        storage.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            let iov = ranges.map { iovec(iov_base: base + $0.lowerBound, iov_len: $0.count) }
            _ = sd_journal_sendv(iov, Int32(iov.count))
        }
    }

    private func journalKey(_ key: String) -> String {
        var out = ""
        for c in key.uppercased().unicodeScalars {
            if (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") { out.unicodeScalars.append(c) } else { out += "_" }
        }
        while out.hasPrefix("_") { out.removeFirst() }
        return out.isEmpty ? "FIELD" : out
    }

    private func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

/// swift-log's handler over a `LogSink`.
public struct AgentLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// The sink's level: one setting for every logger, changed by a reload.
    public var logLevel: Logger.Level {
        get { sink.level }
        set { sink.level = newValue }
    }
    private let sink: LogSink
    private let label: String

    public init(label: String, sink: LogSink) {
        self.label = label
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        if let error = event.error { all["error"] = "\(error)" }
        sink.write(level: event.level, message: event.message.description, metadata: all, label: label)
    }
}

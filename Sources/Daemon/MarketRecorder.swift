public import Engine
public import ExchangeStreams
import Foundation
public import Logging
public import MarketData
public import ServiceLifecycle
import Synchronization

/// `auction-agent record` (docs/FEATURES.md, "Recording the market"): Bybit's public trades (with their ids and
/// taker side) and L1 quotes into daily files, trades as Bybit's dumps and quotes in the project's format. Files are
/// made safe (gzip members ended and fsynced) every `flushSeconds`; after a restart the day is continued, an
/// unfinished member cut off, and trades already written (by exchange id) or quotes not newer than the last one are
/// dropped. Every span the recording misses goes into `gaps.csv`: the stream's disconnections, and the time the
/// recorder was not running (from its last trade on disk to the first trade after the start).
public final class MarketRecorder: Sendable {
    private struct State {
        var files: MarketDayFiles
        /// The recording so far (the files' last trade and quote, the ids of the trades of their last minute).
        var lastTradeTs: Millis?
        var lastQuote: QuoteEvent?
        var recentIds: Set<String>
        var recentOrder: [(ts: Millis, id: String)] = []
        /// Where the previous run stopped, until the first event of this one says how long the gap was.
        var resumeFrom: Millis?
        var trades = 0
        var quotes = 0
        var duplicates = 0
        var gaps = 0
        var error: String?
    }

    public let directory: String
    private let state: Mutex<State>
    private let logger: Logger

    /// Opens the directory and reads where the recording stopped. Errors name the file.
    public init(directory: String, instrument: Instrument, logger: Logger) throws(DataFileError) {
        self.directory = directory
        self.logger = logger
        let tail = try RecordingTail.read(directory: directory, instrument: instrument)
        let files = try MarketDayFiles(directory: directory, instrument: instrument)
        // The trades decide the gap: the first message after a start may be the current book, older than trades
        // that printed while the recorder was down; the gap ends at the first trade received.
        let resume = tail.lastTradeTs ?? tail.lastQuote?.ts
        state = Mutex(
            State(
                files: files, lastTradeTs: tail.lastTradeTs, lastQuote: tail.lastQuote,
                recentIds: tail.recentTradeIds, recentOrder: tail.recentTrades, resumeFrom: resume))
        if let resume {
            logger.notice(
                "continuing the recording",
                metadata: [
                    "event": "record.resume", "dir": "\(directory)", "last": "\(isoTime(resume, milliseconds: true))",
                    "cut_bytes": "\(tail.cutBytes)",
                ])
        }
    }

    /// The stream's messages (a parser with `keepTradeIds`).
    public func onMessage(_ message: PublicMessage) {
        switch message {
        case .trades(let trades, let ids):
            record { s throws(DataFileError) in
                for (k, t) in trades.enumerated() {
                    let id = k < ids.count ? ids[k] : ""
                    try resumed(&s, at: t.ts)
                    if let last = s.lastTradeTs, t.ts <= last {
                        // At or before the recording's last trade: kept only when its id was not written.
                        if t.ts < last - 60_000 || id.isEmpty || s.recentIds.contains(id) {
                            s.duplicates += 1
                            continue
                        }
                    }
                    try s.files.write(t, id: id)
                    s.trades += 1
                    s.lastTradeTs = max(s.lastTradeTs ?? t.ts, t.ts)
                    if !id.isEmpty {
                        s.recentIds.insert(id)
                        s.recentOrder.append((t.ts, id))
                    }
                }
                // The ids of the last minute are enough: the stream never sends older trades again.
                if s.recentOrder.count > 50_000, let last = s.lastTradeTs {
                    let keep = s.recentOrder.drop { $0.ts < last - 60_000 }
                    for old in s.recentOrder.prefix(s.recentOrder.count - keep.count) { s.recentIds.remove(old.id) }
                    s.recentOrder = Array(keep)
                }
            }
        case .quote(let q, _):
            record { s throws(DataFileError) in
                if let last = s.lastQuote, q.ts < last.ts || q == last {
                    s.duplicates += 1
                    return
                }
                try s.files.write(q)
                s.quotes += 1
                s.lastQuote = q
            }
        case .control: break
        }
    }

    /// The stream's status: a gap it reports (after a disconnection) goes into gaps.csv.
    public func onStatus(_ status: StreamStatus) {
        switch status {
        case .gap(let from, let to):
            record { s throws(DataFileError) in
                try GapsFile.append(
                    [RecordedGap(from: from, to: to, cause: "public stream disconnected")], to: directory)
                s.gaps += 1
            }
            logger.warning(
                "gap in the recording",
                metadata: [
                    "event": "record.gap", "from": "\(isoTime(from, milliseconds: true))",
                    "to": "\(isoTime(to, milliseconds: true))",
                ])
        case .disconnected(let reason):
            logger.warning(
                "public stream disconnected", metadata: ["event": "record.disconnected", "reason": "\(reason)"])
        case .ready:
            logger.info("recording", metadata: ["event": "record.subscribed"])
        case .malformed(let text):
            logger.error("malformed message", metadata: ["event": "record.malformed", "error": "\(text)"])
        default: break
        }
    }

    /// Ends the files' gzip members and fsyncs them: everything received so far is safe on disk.
    public func flush() {
        // The fsyncs outside the lock: the stream's thread (in the agent, also the engine's market data) never waits
        // for the disk.
        var pending: [PendingSync] = []
        record { s throws(DataFileError) in pending = try s.files.endMembers() }
        for p in pending {
            do throws(DataFileError) {
                try p.sync()
            } catch {
                record { (_) throws(DataFileError) in throw error }
            }
        }
    }

    /// Flushes and closes the files. Returns the counts for the last log line.
    public func close() -> (trades: Int, quotes: Int, duplicates: Int, gaps: Int, error: String?) {
        record { s throws(DataFileError) in try s.files.close() }
        return state.withLock { ($0.trades, $0.quotes, $0.duplicates, $0.gaps, $0.error) }
    }

    /// The first write failure (a full disk, a damaged file), once.
    public var failure: String? { state.withLock { $0.error } }

    /// The gap from the previous run's last trade to the first trade of this one (closed at both ends: trades at
    /// those milliseconds may be missing too).
    private func resumed(_ s: inout State, at ts: Millis) throws(DataFileError) {
        guard let from = s.resumeFrom else { return }
        s.resumeFrom = nil
        guard ts > from else { return }
        try GapsFile.append([RecordedGap(from: from, to: ts, cause: "recorder not running")], to: directory)
        s.gaps += 1
        logger.notice(
            "gap while the recorder was not running",
            metadata: [
                "event": "record.gap", "from": "\(isoTime(from, milliseconds: true))",
                "to": "\(isoTime(ts, milliseconds: true))", "cause": "recorder not running",
            ])
    }

    private func record(_ body: (inout State) throws(DataFileError) -> Void) {
        let failed: String? = state.withLock { s in
            guard s.error == nil else { return nil }
            do throws(DataFileError) {
                try body(&s)
                return nil
            } catch {
                s.error = "\(error)"
                return s.error
            }
        }
        if let failed {
            logger.critical("recording failed", metadata: ["event": "record.failed", "error": "\(failed)"])
        }
    }
}

/// Records until SIGTERM or SIGINT: the public stream into the recorder, and the files made safe every
/// `flushSeconds`.
public struct RecorderService: Service {
    let recorder: MarketRecorder
    let stream: BybitPublicStream
    let flushSeconds: Int

    public init(recorder: MarketRecorder, stream: BybitPublicStream, flushSeconds: Int) {
        self.recorder = recorder
        self.stream = stream
        self.flushSeconds = flushSeconds
    }

    public func run() async throws {
        let recorder = self.recorder
        let stream = self.stream
        let flushSeconds = self.flushSeconds
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await stream.run(onMessage: { recorder.onMessage($0) }, onStatus: { recorder.onStatus($0) })
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(flushSeconds))
                        recorder.flush()
                        if recorder.failure != nil { return }
                    }
                }
                // A write failure ends the recording (the unit restarts it; the logs say why).
                await group.next()
                group.cancelAll()
            }
        }
    }
}

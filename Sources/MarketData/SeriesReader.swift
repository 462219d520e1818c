public import Engine
import Foundation
import Synchronization

// The reading behind `RecordedSeries` (docs/FEATURES.md, "Many files"): one thread per series inflates and parses its
// files ahead of the Engine and hands over events in chunks through a bounded queue, so reading and the Engine run on
// both cores and memory holds a few chunks, not a day.
//
// A file is streamed in time order as it is parsed when its first rows run forward in time: rows that go back by up to
// `OrderingSink.window` are put in place (the same order as a stable sort of the whole file), a row further back than
// that stops the run naming its line. A file whose first rows never rise (Bybit's newest-first dumps) goes, as it is
// parsed, to a temporary file (`ReversedEvents`) that is then read back from its end: reversed, as one file always
// was, without holding it; should it rise later after all, it is held and sorted. A file whose first rows go back
// further than the window is held whole and sorted keeping the file order of equal timestamps.

/// An event of a recorded series: what the series orders it by. Plain bytes (a newest-first file's events are
/// written to a temporary file and read back as they are).
public protocol RecordedEvent: Sendable, BitwiseCopyable {
    var ts: Millis { get }
}

extension TradeEvent: RecordedEvent {}
extension QuoteEvent: RecordedEvent {}

/// What one file's reader hands over, in order.
enum SeriesPiece<Event: Sendable>: Sendable {
    /// Events in time order (within the range), the next of the series.
    case events([Event])
    /// A file's first events follow: its report so far (header read, rows up to the first chunk).
    case started(LoadReport)
    /// A file was read to its end: its report, and its span when it had events.
    case ended(LoadReport, FileSpan?)
    /// No more events: every file was read, or one starts at or after the range's end.
    case finished
    case failed(DataFileError)
}

/// A bounded queue of pieces between a series' reader thread and its consumer.
final class SeriesPipe<Event: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var pieces: [SeriesPiece<Event>] = []
    private var chunks = 0
    private var cancelled = false
    private var producing = true
    /// Chunks of events the reader may be ahead by.
    private let capacity: Int

    init(capacity: Int = 4) { self.capacity = capacity }

    /// Adds a piece, waiting while the queue holds `capacity` chunks; false once the consumer has gone.
    func put(_ piece: SeriesPiece<Event>) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let isChunk = if case .events = piece { true } else { false }
        while isChunk && chunks >= capacity && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        if isChunk { chunks += 1 }
        pieces.append(piece)
        condition.broadcast()
        return true
    }

    /// The next piece, waiting for the reader.
    func take() -> SeriesPiece<Event> {
        condition.lock()
        defer { condition.unlock() }
        while pieces.isEmpty { condition.wait() }
        // A few pieces at most: removing the first keeps no chunk alive once taken.
        let piece = pieces.removeFirst()
        if case .events = piece {
            chunks -= 1
            condition.broadcast()
        }
        return piece
    }

    /// The consumer has gone: the reader stops at its next piece.
    func cancel() {
        condition.lock()
        cancelled = true
        pieces.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    /// The reader thread has returned.
    func producerEnded() {
        condition.lock()
        producing = false
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the reader thread has returned.
    func waitForProducer() {
        condition.lock()
        while producing { condition.wait() }
        condition.unlock()
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }
}

/// A series' reader thread, stopped when the last holder lets go of it.
final class SeriesReading<Event: RecordedEvent>: Sendable {
    let pipe = SeriesPipe<Event>()

    init(plan: SeriesPlan<Event>) {
        let pipe = self.pipe
        let thread = Thread {
            plan.produce(into: pipe)
            pipe.producerEnded()
        }
        thread.name = "series reader"
        thread.start()
    }

    deinit { pipe.cancel() }
}

/// What a series reads: its files in reading order, the range, and how one file is parsed into a sink.
struct SeriesPlan<Event: RecordedEvent>: Sendable {
    var files: [String]
    var firstTimes: [Millis]
    var skipsFilesBeforeRange: Bool
    var range: TimeRange
    var readFile: @Sendable (String, inout SeriesFileSink<Event>) throws(DataFileError) -> LoadReport

    /// Reads every file in turn into `pipe` (on the reader thread).
    func produce(into pipe: SeriesPipe<Event>) {
        var previous: FileSpan?
        var next = 0
        do throws(DataFileError) {
            while next < files.count {
                // Files do not overlap (checked as they are read): one that starts before the next file's first row,
                // which itself is before the range, holds nothing in it.
                if skipsFilesBeforeRange, let from = range.from {
                    while next + 1 < files.count && firstTimes[next + 1] < from { next += 1 }
                }
                let path = files[next]
                next += 1
                var sink = SeriesFileSink<Event>(path: path, range: range, previous: previous, pipe: pipe)
                var report = try readFile(path, &sink)
                (report.reordered, report.reversed) = try sink.finish()
                if sink.startsAfterRange { break }
                let span = sink.span(report)
                guard pipe.put(.ended(report, span)) else { return }
                if let span { previous = span }
            }
            _ = pipe.put(.finished)
        } catch {
            if !pipe.isCancelled { _ = pipe.put(.failed(error)) }
        }
    }
}

/// One file's events on their way to the pipe: put in time order (see the top of this file), checked against the file
/// before, cut to the range, handed over in chunks.
struct SeriesFileSink<Event: RecordedEvent>: EventSink {
    /// How far back in time a streamed file's row may go behind the latest row before it.
    static var window: Millis { 60_000 }
    /// Rows looked at before a file is streamed or held.
    static var decisionRows: Int { 65_536 }
    /// Rows per chunk handed over.
    static var chunkRows: Int { 16_384 }

    private enum Mode { case deciding, streaming, reversing, holding }

    let path: String
    let range: TimeRange
    let previous: FileSpan?
    let pipe: SeriesPipe<Event>
    private var mode = Mode.deciding
    private var pending: [Event] = []
    /// A newest-first file's rows parsed so far, but the last `pending`, while `reversing`.
    private var reversed: ReversedEvents<Event>?
    /// Whether a newest-first file went down in time at all (one whose rows all share a time keeps its order).
    private var falls = false
    private var inOrder = true
    private var rises = 0
    private var farBack = false
    private var newRows = 0
    private var latest = Millis.min
    private var latestLine = 0
    private var lastEmitted: Millis?
    private var moved = false
    private var report: LoadReport?
    private var first: Millis?
    private var last: Millis = 0
    private var kept = 0
    /// The file's first row is at or after the range's end: it is read and dropped, and the series ends before it.
    private(set) var startsAfterRange = false

    init(path: String, range: TimeRange, previous: FileSpan?, pipe: SeriesPipe<Event>) {
        self.path = path
        self.range = range
        self.previous = previous
        self.pipe = pipe
    }

    mutating func begin(_ report: LoadReport) { self.report = report }

    @inline(__always) mutating func add(_ event: Event, line: Int) throws(DataFileError) {
        let t = event.ts
        switch mode {
        case .streaming:
            if let lastEmitted, t < lastEmitted { throw tooFarBack(t, line: line) }
            if t < latest {
                inOrder = false
                moved = true
            } else {
                (latest, latestLine) = (t, line)
            }
            pending.append(event)
            newRows += 1
            if newRows >= Self.chunkRows { try flush(before: latest - Self.window) }
        case .deciding:
            if let before = pending.last?.ts, t > before { rises += 1 }
            if t < latest {
                inOrder = false
                if t < latest - Self.window { farBack = true }
            } else {
                (latest, latestLine) = (t, line)
            }
            pending.append(event)
            if pending.count >= Self.decisionRows { try decide() }
        case .reversing:
            // `latest` is the row before.
            if t > latest {
                try hold()
            } else if t < latest {
                falls = true
            }
            latest = t
            pending.append(event)
            if pending.count >= Self.chunkRows && reversed != nil { try spill() }
        case .holding:
            pending.append(event)
        }
    }

    /// The rows of a newest-first file so far go to its temporary file; held instead should it fail.
    private mutating func spill() throws(DataFileError) {
        if !reversed!.append(pending) {
            try hold()
            return
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// A newest-first file that rose after all (or whose temporary file could not be written) is held whole.
    private mutating func hold() throws(DataFileError) {
        if let store = reversed {
            guard let written = store.readAll() else {
                throw DataFileError(file: path, reason: "its rows could not be read back from \(store.path)")
            }
            pending = written + pending
        }
        reversed = nil
        mode = .holding
    }

    /// A file that runs forward (and goes back by less than the window) is streamed; any other is held whole.
    private mutating func decide() throws(DataFileError) {
        if rises == 0, let store = ReversedEvents<Event>() {
            // Newest first so far: to the temporary file as parsed, read back from its end at the file's end.
            mode = .reversing
            reversed = store
            falls = zip(pending, pending.dropFirst()).contains { $0.ts > $1.ts }
            latest = pending.last!.ts
            try spill()
            return
        }
        guard rises > 0 && !farBack else {
            mode = .holding
            return
        }
        mode = .streaming
        moved = !inOrder
        newRows = pending.count
        try flush(before: latest - Self.window)
    }

    /// Hands over the pending rows earlier than `cut`, in time order.
    private mutating func flush(before cut: Millis) throws(DataFileError) {
        newRows = 0
        if !inOrder {
            stableSortByTime(&pending)
            inOrder = true
        }
        var lo = 0
        var hi = pending.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pending[mid].ts < cut { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return }
        try emit(pending[0..<lo])
        lastEmitted = pending[lo - 1].ts
        pending.removeFirst(lo)
    }

    /// The end of the file: what is still pending goes out; returns whether the file was reordered and reversed.
    mutating func finish() throws(DataFileError) -> (moved: Bool, reversed: Bool) {
        if mode == .streaming {
            try flush(before: .max)
            return (moved, false)
        }
        if mode == .reversing, let store = reversed {
            // Never rose: in time order it is the file backwards (all at one time: the file as it is).
            guard falls else {
                try hold()
                return try finish()
            }
            try emit(ArraySlice(pending.reversed()))
            pending = []
            var end = store.count
            while end > 0 {
                let start = max(0, end - Self.chunkRows)
                guard let chunk = store.read(start..<end) else {
                    throw DataFileError(file: path, reason: "its rows could not be read back from \(store.path)")
                }
                try emit(ArraySlice(chunk.reversed()))
                end = start
            }
            reversed = nil
            return (true, true)
        }
        let order = putInTimeOrder(&pending, by: \.ts)
        var start = 0
        while start < pending.count {
            let end = min(start + Self.chunkRows, pending.count)
            try emit(pending[start..<end])
            start = end
        }
        pending = []
        return order
    }

    /// The file's span, nil when it had no events.
    func span(_ report: LoadReport) -> FileSpan? {
        first.map {
            FileSpan(
                file: path, first: $0, last: last, rows: kept, source: report.source, sha256: report.sha256,
                bytes: report.storedBytes)
        }
    }

    private mutating func emit(_ events: ArraySlice<Event>) throws(DataFileError) {
        guard let head = events.first, let tail = events.last else { return }
        if first == nil {
            first = head.ts
            if let previous, head.ts < previous.last {
                throw DataFileError(
                    file: path,
                    reason:
                        "overlaps \(previous.file) (this file starts \(isoTime(head.ts, milliseconds: true)), that one ends \(isoTime(previous.last, milliseconds: true))): "
                        + "a day given twice? Give each time once")
            }
            if let to = range.to, head.ts >= to { startsAfterRange = true }
            if !startsAfterRange {
                var started = report ?? LoadReport(file: path)
                started.rows = events.count
                try put(.started(started))
            }
        }
        last = tail.ts
        guard !startsAfterRange else { return }
        let chunk = range == .all ? Array(events) : events.filter { range.contains($0.ts) }
        kept += chunk.count
        if !chunk.isEmpty { try put(.events(chunk)) }
    }

    private func put(_ piece: SeriesPiece<Event>) throws(DataFileError) {
        guard pipe.put(piece) else { throw DataFileError(file: path, reason: "reading stopped") }
    }

    private func tooFarBack(_ t: Millis, line: Int) -> DataFileError {
        DataFileError(
            file: path, line: line,
            reason:
                "\(isoTime(t, milliseconds: true)) is more than \(Self.window / 1000) s before line \(latestLine) "
                + "(\(isoTime(latest, milliseconds: true))): a file that runs forward in time is read as it streams "
                + "and may go back by at most \(Self.window / 1000) s; sort this file by time (keeping its header first)"
        )
    }
}

/// Sorts by time, keeping the order of equal timestamps (the order `putInTimeOrder` gives a disordered file).
func stableSortByTime<Event: RecordedEvent>(_ events: inout [Event]) {
    let order = events.indices.sorted { (events[$0].ts, $0) < (events[$1].ts, $1) }
    events = order.map { events[$0] }
}

/// How many temporary files of newest-first events were opened (the tests check that a dump is not held).
enum ReversedFiles {
    static let opened = Atomic<Int>(0)
}

/// A newest-first file's events, written as they are parsed to a temporary file (in TMPDIR, default /tmp; unlinked
/// as soon as it is opened, so nothing is left behind) and read back a range at a time: the file in time order
/// without holding it. Nil or false where the file cannot be opened or written (the reader then holds the file).
final class ReversedEvents<Event: RecordedEvent> {
    let path: String
    private let fd: Int32
    private(set) var count = 0

    init?() {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/auction-reversed-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        self.fd = fd
        unlink(path)
        ReversedFiles.opened.add(1, ordering: .relaxed)
    }

    deinit { close(fd) }

    /// Appends events; false when the write failed (a full disk).
    func append(_ events: [Event]) -> Bool {
        let offset = Int64(count * MemoryLayout<Event>.stride)
        guard events.withUnsafeBytes({ writeFully(fd, $0, at: offset) }) == nil else { return false }
        count += events.count
        return true
    }

    /// The events at `range` (indices in the order written), nil when they cannot be read.
    func read(_ range: Range<Int>) -> [Event]? {
        var ok = false
        let events = [Event](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            let bytes = UnsafeMutableRawBufferPointer(buffer)
            ok = readFully(fd, bytes, at: Int64(range.lowerBound * MemoryLayout<Event>.stride)) == nil
            initialized = ok ? range.count : 0
        }
        return ok ? events : nil
    }

    /// Every event written, in order.
    func readAll() -> [Event]? { read(0..<count) }
}

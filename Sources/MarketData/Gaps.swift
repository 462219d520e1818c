public import Engine
import Foundation

/// A span of market time a recording is known to miss (docs/FEATURES.md, "Recording the market"): the stream
/// disconnected, the recorder was down, the agent's store was unwritable. `gaps.csv` beside the daily files lists
/// them: `from,to,cause`, times in ISO 8601 UTC with milliseconds.
public struct RecordedGap: Sendable, Equatable {
    public var from: Millis
    public var to: Millis
    public var cause: String

    public init(from: Millis, to: Millis, cause: String) {
        self.from = from
        self.to = to
        self.cause = cause
    }

    public var minutes: Double { Double(to - from) / 60_000 }
}

public enum GapsFile {
    public static let name = "gaps.csv"
    public static let header = "from,to,cause"

    /// Appends gaps to `directory/gaps.csv` (created with its header), one line each, flushed to disk.
    public static func append(_ gaps: [RecordedGap], to directory: String) throws(DataFileError) {
        guard !gaps.isEmpty else { return }
        let path = (directory as NSString).appendingPathComponent(name)
        let exists = FileManager.default.fileExists(atPath: path)
        var text = exists ? "" : header + "\n"
        for g in gaps {
            // A cause is free text: no commas or line breaks in a CSV field.
            let cause = g.cause.map { $0 == "," || $0 == "\n" || $0 == "\r" ? ";" : $0 }
            text += "\(isoTime(g.from, milliseconds: true)),\(isoTime(g.to, milliseconds: true)),\(String(cause))\n"
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataFileError(file: path, reason: "cannot be opened for writing: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw DataFileError(file: path, reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }

    /// The gaps of `path`; a malformed line is an error naming it.
    public static func read(_ path: String) throws(DataFileError) -> [RecordedGap] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataFileError(file: path, reason: "cannot be read")
        }
        var out: [RecordedGap] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if i == 0 {
                guard text == header else {
                    throw DataFileError(file: path, line: 1, reason: "the header must be '\(header)', found '\(text)'")
                }
                continue
            }
            if text.isEmpty { continue }
            let fields = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3, let from = TimeRange.parseTime(fields[0]), let to = TimeRange.parseTime(fields[1])
            else {
                throw DataFileError(
                    file: path, line: i + 1, reason: "expected 'from,to,cause' with ISO 8601 times, found '\(text)'")
            }
            guard to >= from else {
                throw DataFileError(file: path, line: i + 1, reason: "the gap ends before it starts")
            }
            out.append(RecordedGap(from: from, to: to, cause: fields[2]))
        }
        return out
    }

    /// The gaps listed beside the given input files (each file's directory's `gaps.csv`, each read once), those
    /// overlapping `range`, cut to it, in time order; nil when no directory has a `gaps.csv`.
    public static func beside(_ files: [String], range: TimeRange) throws(DataFileError) -> [RecordedGap]? {
        var directories: [String] = []
        for f in files {
            let d = (f as NSString).deletingLastPathComponent
            if !directories.contains(d) { directories.append(d) }
        }
        var gaps: [RecordedGap] = []
        var listed = false
        for d in directories {
            let path = ((d.isEmpty ? "." : d) as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            listed = true
            for var g in try read(path) {
                if let from = range.from { g.from = max(g.from, from) }
                if let to = range.to { g.to = min(g.to, to) }
                if g.to > g.from || (g.to == g.from && range.contains(g.from)) { gaps.append(g) }
            }
        }
        return listed ? gaps.sorted { ($0.from, $0.to) < ($1.from, $1.to) } : nil
    }

    /// One line for a run's summary: count, total minutes, the longest.
    public static func summary(_ gaps: [RecordedGap]) -> String {
        guard let longest = gaps.max(by: { $0.to - $0.from < $1.to - $1.from }) else {
            return "gaps: none listed in gaps.csv"
        }
        let total = gaps.reduce(0) { $0 + $1.minutes }
        return "gaps: \(gaps.count) in the range (gaps.csv), \(String(format: "%.1f", total)) minutes in all; "
            + "the longest \(String(format: "%.1f", longest.minutes)) min from "
            + "\(isoTime(longest.from, milliseconds: true)) (\(longest.cause))"
    }
}

import ArgumentParser
import Foundation
import MarketData

/// `grid --memory-budget`: how much memory the grid may fill with events before it streams the files instead.
enum MemoryBudget {
    /// `512M`, `8G`, `1.5G`, `2T`, `65536` (bytes); K, M, G and T are powers of 1024 (`GB`, `GiB` also read);
    /// nil when the text is not a size.
    static func parse(_ text: String) -> Int64? {
        var t = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where t.hasSuffix(suffix) && t.count > suffix.count {
            t.removeLast(suffix.count)
            break
        }
        let units: [Character: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
        var factor = 1.0
        if let last = t.last, let unit = units[last] {
            factor = unit
            t.removeLast()
        }
        guard let number = Double(t), number > 0, number.isFinite else { return nil }
        let bytes = number * factor
        return bytes >= 1 && bytes < 9e18 ? Int64(bytes) : nil
    }

    /// The memory this process may use: the machine's (`MemTotal`), or its cgroup's limit when lower (a Kubernetes
    /// pod's, a Slurm job's under cgroup v2 or v1).
    static func available() -> Int64 {
        var total: Int64 = 0
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") })
        {
            total = (Int64(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
                let limit = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0
            {
                total = total > 0 ? min(total, limit) : limit
            }
        }
        return total > 0 ? total : 4 << 30
    }

    /// The default budget: half of what this process may use (the runs' own state and the outputs need the rest).
    static var standard: Int64 { available() / 2 }

    /// `1.2 GB`, `640 MB`.
    static func text(_ bytes: Int64) -> String {
        bytes >= 1 << 30
            ? String(format: "%.1f GB", Double(bytes) / Double(1 << 30))
            : String(format: "%.0f MB", Double(bytes) / Double(1 << 20))
    }
}

/// `--memory-budget` of the research commands that hold every event (grid, walkforward).
struct MemoryBudgetOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Hold the events in memory only up to this size (512M, 8G; default: half the machine's memory, or of "
                + "its cgroup's limit); data that need more are streamed as with --stream.", valueName: "size"))
    var memoryBudget: String?

    func validate() throws {
        if let memoryBudget, MemoryBudget.parse(memoryBudget) == nil {
            throw ValidationError("--memory-budget \(memoryBudget): expected a size such as 512M, 8G or 1.5G")
        }
    }

    /// Whether `command` streams `files` (asked with --stream, or their events over the budget), and the line that
    /// says so for its summary. `streamed` describes what streaming does for this command.
    func decide(
        _ files: (trades: [String], quotes: [String]), stream: Bool, command: String, streamed: String
    ) throws -> (streaming: Bool, line: String) {
        if stream { return (true, "\(command): \(streamed) (--stream)") }
        let need = try EventMemory.estimate(trades: files.trades, quotes: files.quotes)
        let budget = memoryBudget.flatMap(MemoryBudget.parse) ?? MemoryBudget.standard
        let line = "\(command): the events need about \(MemoryBudget.text(need)) in memory, "
        return need > budget
            ? (true, line + "over the budget of \(MemoryBudget.text(budget)) (--memory-budget): \(streamed) instead")
            : (false, line + "within the budget of \(MemoryBudget.text(budget)): held in memory")
    }
}

import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Foundation

/// `auction-agent backup`: a consistent copy of an environment's database, also while its agent trades.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy an environment's database to FILE with SQLite's online backup (safe while the agent runs).",
        discussion: """
            The copy is consistent at one instant even while the agent writes (SQLite's backup API; the agent \
            is not stopped or slowed beyond a read), is checked with PRAGMA quick_check, and is written beside \
            FILE and renamed, so a failed backup leaves no half file. FILE must not exist. Restoring is putting \
            the copy back as <state_dir>/agent.sqlite with the unit stopped; the agent then recovers from its \
            last snapshot and, in shadow and live, takes the exchange's truth (runbooks/backup-and-restore.md, \
            which also has a systemd timer). The state directory is found as for `export`.
            """
    )

    @Option(help: ArgumentHelp("The copy to write (must not exist; its directory must).", valueName: "file"))
    var out: String

    @Option(help: ArgumentHelp("The agent's state directory.", valueName: "dir"))
    var stateDir: String?

    @OptionGroup var config: ConfigOptions

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let envName = config.environment ?? resolved.environment ?? "custom"
        let dir = agentStateDirectory(explicit: stateDir, resolved: resolved, environment: envName)
        print(try Backup.run(stateDirectory: dir, environment: envName, resolved: resolved, out: out))
    }
}

/// The work of `backup`, callable from tests.
enum Backup {
    static func run(stateDirectory dir: String, environment: String, resolved: ResolvedConfig, out: String) throws
        -> String
    {
        guard !FileManager.default.fileExists(atPath: out) else {
            throw CommandError("\(out): exists; backup writes a new file only (remove it or choose another --out)")
        }
        let parent = (out as NSString).deletingLastPathComponent
        guard parent.isEmpty || FileManager.default.fileExists(atPath: parent) else {
            throw CommandError("\(out): the directory \(parent) does not exist")
        }
        let store = try openAgentStore(directory: dir, environment: environment, instrument: resolved.instrument)
        let started = Date()
        let pages = try store.backup(to: out)
        let last = try AgentStore.checkCopy(out)
        let bytes = ((try? FileManager.default.attributesOfItem(atPath: out))?[.size] as? NSNumber)?.int64Value ?? 0
        return "backed up \(store.path) to \(out): \(pages) pages, \(bytes / 1_048_576) MB in "
            + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s; quick_check ok; last snapshot "
            + (last.map { "\(isoTime($0.wallTs)) (state \($0.state))" } ?? "none")
    }
}

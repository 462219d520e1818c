import AgentConfig
import AgentSupport
import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on a state directory (`agent.lock`, `flock`): held by the running agent for its whole life, and
/// by the tools that change its database offline (`backfill`), so that neither runs under the other. The kernel
/// drops it when the process ends, however it ends.
public final class StateLock: Sendable {
    private let fd: Int32
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Takes the lock or throws, naming the process that holds it. `holder` describes the taker (written in the file).
    public static func acquire(directory: String, holder: String) throws -> StateLock {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("agent.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw CommandError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let other =
                (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                ?? ""
            close(fd)
            throw CommandError(
                "the state directory \(directory) is in use (\(other.isEmpty ? "another process" : other))")
        }
        let text = "\(holder) pid \(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        return StateLock(fd: fd, path: path)
    }

    deinit { close(fd) }

    /// An environment's state directory, the one rule for the agent and every offline tool: `explicit`
    /// (--state-dir), else `agent.state_dir`, else `$STATE_DIRECTORY` (systemd; its first entry), else, for a tool run
    /// by hand (`lookForPackaged`), the packaged units' directory that holds this environment's database:
    /// /var/lib/auction-agent/ENV (`auction-agent@ENV.service`), else /var/lib/auction-agent/main when its database
    /// belongs to ENV (`auction-agent.service`); else ./state/ENV.
    package static func stateDirectory(
        explicit: String?, configured: String?, environment: String, processEnvironment: [String: String],
        lookForPackaged: Bool = false, packagedRoot: String = "/var/lib/auction-agent"
    ) -> String {
        if let explicit { return explicit }
        if let configured, !configured.isEmpty { return configured }
        if let s = processEnvironment["STATE_DIRECTORY"], let first = s.split(separator: ":").first {
            return String(first)
        }
        if lookForPackaged {
            let own = "\(packagedRoot)/\(environment)"
            if FileManager.default.fileExists(atPath: own + "/agent.sqlite") { return own }
            let main = "\(packagedRoot)/main"
            if storedEnvironment(main + "/agent.sqlite") == environment { return main }
        }
        return "state/\(environment)"
    }

    /// The environment a state database was last run with (its `meta` row), read without changing the file.
    static func storedEnvironment(_ path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        guard let db = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        return try? db.read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'environment'") }
    }
}

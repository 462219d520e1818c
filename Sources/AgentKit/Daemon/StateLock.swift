import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on a state directory (`agent.lock`, `flock`): held by the running agent for its whole life, and
/// by the tools that change its database offline (`backfill`), so that neither runs under the other. The kernel
/// drops it when the process ends, however it ends.
public final class StateLock: @unchecked Sendable {
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

    /// An environment's state directory: `explicit` (--state-dir), else `agent.state_dir`, else `$STATE_DIRECTORY`
    /// (systemd), else, for an offline tool run by hand (`lookForPackaged`), /var/lib/auction-agent/ENV when it holds
    /// a database, else ./state/ENV.
    static func stateDirectory(
        explicit: String?, resolved: ResolvedConfig, environment: String, processEnvironment: [String: String],
        lookForPackaged: Bool = false
    ) -> String {
        if let explicit { return explicit }
        let configured = resolved.text("agent.state_dir")
        if !configured.isEmpty { return configured }
        if let s = processEnvironment["STATE_DIRECTORY"] { return String(s.split(separator: ":")[0]) }
        let packaged = "/var/lib/auction-agent/\(environment)"
        if lookForPackaged && FileManager.default.fileExists(atPath: packaged + "/agent.sqlite") { return packaged }
        return "state/\(environment)"
    }
}

import AgentSupport
import Foundation
import GRDB

/// Why the agent's database cannot be opened, worded for the operator (docs/OPERATIONS.md, "Storage faults"): the
/// file, what is wrong with it, and the runbook that says what to do.
public enum StoreOpenError: Error, CustomStringConvertible {
    /// `PRAGMA quick_check` failed, or SQLite found the file damaged or not a database.
    case corrupt(path: String, detail: String)
    /// Another process holds a lock on the database (`holders`: who has the file open, as far as /proc tells).
    case locked(path: String, holders: [String], detail: String)
    /// The file or its directory cannot be written (a read-only filesystem, permissions).
    case readOnly(path: String, detail: String)
    /// The disk is full.
    case full(path: String, detail: String)

    public var description: String {
        switch self {
        case .corrupt(let path, let detail):
            "the database \(path) is damaged (\(detail)); the agent will not trade on it. Restore the last backup "
                + "or move the file away (runbooks/backup-and-restore.md)"
        case .locked(let path, let holders, let detail):
            "the database \(path) is locked by another process ("
                + (holders.isEmpty ? "none of this user's processes has it open" : holders.joined(separator: ", "))
                + "): \(detail). Stop that process, then start again (runbooks/storage-full.md)"
        case .readOnly(let path, let detail):
            "the database \(path) cannot be written (\(detail)): is the filesystem read-only? (runbooks/storage-full.md)"
        case .full(let path, let detail):
            "the database \(path) cannot grow: the disk is full (\(detail)); free space first (runbooks/storage-full.md)"
        }
    }

    /// The operator's wording of an error opening `path`; other errors pass unchanged.
    static func classify(_ error: any Error, path: String) -> any Error {
        guard let e = error as? DatabaseError else { return error }
        let detail = e.message ?? "\(e.resultCode)"
        switch e.resultCode.primaryResultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: return StoreOpenError.corrupt(path: path, detail: detail)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreOpenError.locked(path: path, holders: openers(of: path), detail: detail)
        case .SQLITE_READONLY,
            .SQLITE_CANTOPEN where !isWritable(path):
            return StoreOpenError.readOnly(path: path, detail: detail)
        case .SQLITE_FULL: return StoreOpenError.full(path: path, detail: detail)
        default: return error
        }
    }

    private static func isWritable(_ path: String) -> Bool {
        access((path as NSString).deletingLastPathComponent, W_OK) == 0
            && (access(path, F_OK) != 0 || access(path, W_OK) == 0)
    }

    /// The processes (other than this one) with `path` or its WAL open: "pid 123 (sqlite3)", read from /proc (only
    /// this user's processes are visible to it, unless run as root).
    static func openers(of path: String) -> [String] {
        let files = Set([path, path + "-wal", path + "-shm"].map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        let me = getpid()
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [String] = []
        for pid in pids.compactMap({ Int32($0) }) where pid != me {
            let fdDir = "/proc/\(pid)/fd"
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDir) else { continue }
            let holds = fds.contains { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)")).map(files.contains)
                    ?? false
            }
            guard holds else { continue }
            let name =
                (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            found.append("pid \(pid) (\(name))")
        }
        return found
    }
}

import Foundation

/// Writes bytes to `path` through a temporary file in the same directory and a rename.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
    else {
        throw CommandError(description: "\(path): the directory \(directory.path) does not exist")
    }
    let temporary = directory.appendingPathComponent(
        ".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
    do {
        try Data(bytes).write(to: temporary)
        // rename(2) replaces the target atomically: readers see the old file or the new one, never a mix.
        guard rename(temporary.path, url.path) == 0 else {
            throw CommandError(description: String(cString: strerror(errno)))
        }
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw CommandError(description: "\(path): cannot be written: \(error.localizedDescription)")
    }
}

/// Free space of the filesystem holding `directory` for an unprivileged writer (`statvfs`'s `f_bavail`), bytes; nil
/// when it cannot be read.
public func freeDiskBytes(_ directory: String) -> Int64? {
    var s = statvfs()
    guard statvfs(directory, &s) == 0 else { return nil }
    return Int64(s.f_bavail) * Int64(s.f_frsize)
}

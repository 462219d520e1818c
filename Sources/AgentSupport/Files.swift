import Foundation

/// Writes bytes to `path` through a temporary file in the same directory and a rename.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let file = try AtomicFile(path: path)
    try file.write(bytes)
    try file.commit()
}

/// A file written in parts beside its place and renamed into it at the end: readers see the old file or the whole new
/// one, never a part, and a run that fails (or lets go of it before `commit`) removes the part it wrote. What a long
/// run produces goes to disk as it comes instead of being held for the end.
public final class AtomicFile {
    public let path: String
    private let temporary: String
    private var file: UnsafeMutablePointer<FILE>?

    public init(path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw CommandError(description: "\(path): the directory \(directory.path) does not exist")
        }
        self.path = path
        temporary =
            directory.appendingPathComponent(
                ".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)"
            ).path
        guard let file = fopen(temporary, "wb") else { throw Self.failure(path) }
        self.file = file
    }

    deinit {
        if let file {
            fclose(file)
            unlink(temporary)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        guard let file else { throw CommandError(description: "\(path): written after it was closed") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        guard written == bytes.count else { throw abandon() }
    }

    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    /// Puts the file in place (rename(2) replaces the target atomically).
    public func commit() throws {
        guard let file else { throw CommandError(description: "\(path): committed twice") }
        guard fflush(file) == 0 else { throw abandon() }
        fclose(file)
        self.file = nil
        guard rename(temporary, path) == 0 else {
            let error = Self.failure(path)
            unlink(temporary)
            throw error
        }
    }

    private func abandon() -> CommandError {
        let error = Self.failure(path)
        if let file { fclose(file) }
        file = nil
        unlink(temporary)
        return error
    }

    private static func failure(_ path: String) -> CommandError {
        CommandError(description: "\(path): cannot be written: \(String(cString: strerror(errno)))")
    }
}

/// Free space of the filesystem holding `directory` for an unprivileged writer (`statvfs`'s `f_bavail`), bytes; nil
/// when it cannot be read.
public func freeDiskBytes(_ directory: String) -> Int64? {
    var s = statvfs()
    guard statvfs(directory, &s) == 0 else { return nil }
    return Int64(s.f_bavail) * Int64(s.f_frsize)
}

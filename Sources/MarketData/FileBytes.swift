import CZlib
import Foundation

/// Reads a whole file into memory; a name ending in `.gz` is decompressed on the way (gzip, via zlib).
public func readFileBytes(_ path: String) throws(DataFileError) -> [UInt8] {
    if path.hasSuffix(".gz") { return try readGzip(path) }
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw DataFileError(
            file: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
    }
    defer { try? handle.close() }
    do {
        let data = try handle.readToEnd() ?? Data()
        return [UInt8](data)
    } catch {
        throw DataFileError(file: path, reason: "read failed: \(error.localizedDescription)")
    }
}

private func readGzip(_ path: String) throws(DataFileError) -> [UInt8] {
    guard FileManager.default.fileExists(atPath: path) else { throw DataFileError(file: path, reason: "no such file") }
    guard let gz = gzopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be opened") }
    defer { gzclose(gz) }
    _ = gzbuffer(gz, 1 << 20)
    var out: [UInt8] = []
    // The gzip trailer holds the decompressed size (mod 2^32): one allocation for most files. Beyond it the buffer
    // doubles; reserving just the next chunk each time would copy the whole buffer per chunk (quadratic: a 235 MB
    // day took 8 s instead of 3).
    out.reserveCapacity(gzipSizeHint(path) + 1)
    let chunk = 1 << 22
    while true {
        let before = out.count
        if out.capacity < before + chunk { out.reserveCapacity(max(out.capacity * 2, before + chunk)) }
        out.append(contentsOf: repeatElement(0, count: chunk))
        let n = out.withUnsafeMutableBufferPointer { buf in
            gzread(gz, buf.baseAddress! + before, UInt32(chunk))
        }
        if n < 0 {
            var code: Int32 = 0
            let message = gzerror(gz, &code).map { String(cString: $0) } ?? "unknown zlib error"
            throw DataFileError(file: path, reason: "gzip data is corrupt: \(message)")
        }
        out.removeLast(chunk - Int(n))
        if n == 0 {
            var code: Int32 = 0
            let message = gzerror(gz, &code).map { String(cString: $0) } ?? ""
            if code != Z_OK && code != Z_STREAM_END {
                throw DataFileError(file: path, reason: "gzip data is corrupt or truncated: \(message)")
            }
            break
        }
    }
    return out
}

/// The decompressed size a gzip file's trailer states (ISIZE, the size mod 2^32, of its last member), or 0.
func gzipSizeHint(_ path: String) -> Int {
    guard let handle = FileHandle(forReadingAtPath: path) else { return 0 }
    defer { try? handle.close() }
    guard let end = try? handle.seekToEnd(), end >= 18, (try? handle.seek(toOffset: end - 4)) != nil,
        let tail = try? handle.read(upToCount: 4), tail.count == 4
    else { return 0 }
    let size = tail.reversed().reduce(0) { $0 << 8 | Int($1) }
    // A wrapped or foreign trailer: no hint rather than a wrong one far too large.
    return size >= Int(end) && size < 1 << 32 ? size : 0
}

/// Writes all of `bytes` at `offset` of `fd`, again where a write stops short or is interrupted. Nil when written,
/// else why not (errno's text: a full disk says so).
package func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) -> String? {
    untilDone(bytes.count, stopped: "nothing written") { done in
        pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + Int64(done)))
    }
}

/// Reads `bytes.count` bytes at `offset` of `fd` into `bytes`, again where a read stops short or is interrupted. Nil
/// when read, else why not.
package func readFully(_ fd: Int32, _ bytes: UnsafeMutableRawBufferPointer, at offset: Int64) -> String? {
    untilDone(bytes.count, stopped: "the file ends early") { done in
        pread(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + Int64(done)))
    }
}

/// Calls `transfer` (given the bytes done so far; it returns how many it moved, or -1 with errno) until `count` are
/// done. Nil when done, else errno's text, or `stopped` when a call moved nothing.
private func untilDone(_ count: Int, stopped: String, _ transfer: (Int) -> Int) -> String? {
    var done = 0
    while done < count {
        let n = transfer(done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return n < 0 ? String(cString: strerror(errno)) : stopped }
        done += n
    }
    return nil
}

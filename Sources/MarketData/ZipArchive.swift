import CZlib
import Foundation

// Enough of the zip format (PKWARE's APPNOTE) to read Bybit's daily order-book archives: the central directory
// (with its zip64 extension, for members over 4 GiB), and one member's bytes streamed, stored or deflated, checked
// against the sizes and CRC-32 the directory states. Nothing is written and no member is held in memory.

/// The members of a zip file, from its central directory.
struct ZipArchive {
    struct Member {
        var name: String
        var method: UInt16
        var flags: UInt16
        var crc: UInt32
        var compressedSize: UInt64
        var size: UInt64
        var localHeaderOffset: UInt64
        var isDirectory: Bool { name.hasSuffix("/") }
    }

    let path: String
    let members: [Member]

    /// True when the file starts with a zip local header's signature (`PK\3\4`).
    static func hasSignature(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4)) ?? Data()
        return head.elementsEqual([0x50, 0x4B, 0x03, 0x04])
    }

    init(path: String) throws(DataFileError) {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DataFileError(
                file: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        defer { try? handle.close() }
        func fail(_ why: String) -> DataFileError { DataFileError(file: path, reason: why) }
        func bytes(at offset: UInt64, _ count: Int) throws(DataFileError) -> [UInt8] {
            do {
                try handle.seek(toOffset: offset)
                let data = try handle.read(upToCount: count) ?? Data()
                guard data.count == count else { throw fail("the zip archive is truncated (short read)") }
                return [UInt8](data)
            } catch let e as DataFileError {
                throw e
            } catch {
                throw fail("read failed: \(error.localizedDescription)")
            }
        }
        let fileSize: UInt64
        do { fileSize = try handle.seekToEnd() } catch { throw fail("read failed: \(error.localizedDescription)") }
        // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the very end.
        let tailSize = Int(min(fileSize, 22 + 65_535))
        let tail = try bytes(at: fileSize - UInt64(tailSize), tailSize)
        guard
            let eocd = stride(from: tail.count - 22, through: 0, by: -1).first(where: { le32(tail, $0) == 0x0605_4B50 })
        else {
            throw fail(
                "not a complete zip archive: no end-of-central-directory record (a truncated download?)")
        }
        var entries = UInt64(le16(tail, eocd + 10))
        var directorySize = UInt64(le32(tail, eocd + 12))
        var directoryOffset = UInt64(le32(tail, eocd + 16))
        if entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: a locator just before the record points at the zip64 end-of-central-directory record.
            let locatorAt = fileSize - UInt64(tailSize) + UInt64(eocd)
            guard locatorAt >= 20 else { throw fail("zip64 archive without its locator") }
            let locator = try bytes(at: locatorAt - 20, 20)
            guard le32(locator, 0) == 0x0706_4B50 else { throw fail("zip64 archive without its locator") }
            let record = try bytes(at: le64(locator, 8), 56)
            guard le32(record, 0) == 0x0606_4B50 else { throw fail("zip64 end-of-central-directory record not found") }
            entries = le64(record, 32)
            directorySize = le64(record, 40)
            directoryOffset = le64(record, 48)
        }
        guard directoryOffset + directorySize <= fileSize, directorySize < 1 << 30 else {
            throw fail("the zip archive's central directory lies outside the file (truncated?)")
        }
        let directory = try bytes(at: directoryOffset, Int(directorySize))
        var members: [Member] = []
        var at = 0
        for _ in 0..<entries {
            guard at + 46 <= directory.count, le32(directory, at) == 0x0201_4B50 else {
                throw fail("the zip archive's central directory is damaged")
            }
            let nameLength = Int(le16(directory, at + 28))
            let extraLength = Int(le16(directory, at + 30))
            let commentLength = Int(le16(directory, at + 32))
            guard at + 46 + nameLength + extraLength + commentLength <= directory.count else {
                throw fail("the zip archive's central directory is damaged")
            }
            var member = Member(
                name: String(decoding: directory[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self),
                method: le16(directory, at + 10), flags: le16(directory, at + 8), crc: le32(directory, at + 16),
                compressedSize: UInt64(le32(directory, at + 20)), size: UInt64(le32(directory, at + 24)),
                localHeaderOffset: UInt64(le32(directory, at + 42)))
            // Zip64 extended information (header 0x0001): the 64-bit values of the fields set to 0xFFFFFFFF, in order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = le16(directory, extra)
                let size = Int(le16(directory, extra + 2))
                if id == 0x0001 {
                    var field = extra + 4
                    if member.size == 0xFFFF_FFFF, field + 8 <= extraEnd {
                        member.size = le64(directory, field)
                        field += 8
                    }
                    if member.compressedSize == 0xFFFF_FFFF, field + 8 <= extraEnd {
                        member.compressedSize = le64(directory, field)
                        field += 8
                    }
                    if member.localHeaderOffset == 0xFFFF_FFFF, field + 8 <= extraEnd {
                        member.localHeaderOffset = le64(directory, field)
                    }
                }
                extra += 4 + size
            }
            members.append(member)
            at += 46 + nameLength + extraLength + commentLength
        }
        self.members = members
    }

    /// A reader of `member`'s bytes.
    func open(_ member: Member) throws(DataFileError) -> ZipMemberSource {
        try ZipMemberSource(archive: path, member: member)
    }
}

/// One member's bytes, inflated as they are read; at the end its size and CRC-32 are checked against the directory.
final class ZipMemberSource: ByteSource {
    private let file: UnsafeMutablePointer<FILE>
    private let name: String
    private let member: ZipArchive.Member
    /// On the heap: zlib's state points back at its `z_stream`, which must not move.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var inflating = false
    private let input: UnsafeMutablePointer<UInt8>
    private let inputSize = 1 << 20
    private var compressedLeft: UInt64
    private var produced: UInt64 = 0
    private var crc: UInt = crc32(0, nil, 0)
    private var streamEnded = false
    private var checked = false
    private var closed = false

    init(archive path: String, member: ZipArchive.Member) throws(DataFileError) {
        name = "\(path) (\(member.name))"
        self.member = member
        guard member.method == 0 || member.method == 8 else {
            throw DataFileError(
                file: name, reason: "compression method \(member.method) is not supported (only stored and deflate)")
        }
        guard member.flags & 1 == 0 else { throw DataFileError(file: name, reason: "the member is encrypted") }
        guard let file = fopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be read") }
        self.file = file
        input = .allocate(capacity: inputSize)
        stream.initialize(to: z_stream())
        compressedLeft = member.compressedSize
        // The local header repeats the name and may carry its own extra field: the data starts after both.
        var header = [UInt8](repeating: 0, count: 30)
        guard fseeko(file, off_t(member.localHeaderOffset), SEEK_SET) == 0, fread(&header, 1, 30, file) == 30,
            le32(header, 0) == 0x0403_4B50
        else {
            close()
            throw DataFileError(file: name, reason: "the member's local header is missing (a damaged archive)")
        }
        let skip = Int(le16(header, 26)) + Int(le16(header, 28))
        guard fseeko(file, off_t(skip), SEEK_CUR) == 0 else {
            close()
            throw DataFileError(file: name, reason: "the member's data is missing (a truncated archive)")
        }
        if member.method == 8 {
            guard inflateInit2_(stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                close()
                throw DataFileError(file: name, reason: "zlib could not start inflating")
            }
            inflating = true
        }
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(DataFileError) -> Int {
        if checked { return 0 }
        if streamEnded {
            try check()
            return 0
        }
        var n = 0
        if member.method == 0 {
            let want = Int(min(UInt64(count), compressedLeft))
            if want == 0 {
                try check()
                return 0
            }
            n = fread(buffer, 1, want, file)
            if n < want { throw truncated() }
            compressedLeft -= UInt64(n)
        } else {
            stream.pointee.next_out = buffer
            stream.pointee.avail_out = UInt32(min(count, Int(UInt32.max)))
            while stream.pointee.avail_out > 0 {
                if stream.pointee.avail_in == 0 && compressedLeft > 0 {
                    let want = Int(min(UInt64(inputSize), compressedLeft))
                    let got = fread(input, 1, want, file)
                    if got == 0 { throw truncated() }
                    compressedLeft -= UInt64(got)
                    stream.pointee.next_in = input
                    stream.pointee.avail_in = UInt32(got)
                }
                let before = stream.pointee.avail_out
                let status = inflate(stream, Z_NO_FLUSH)
                if status == Z_STREAM_END {
                    streamEnded = true
                    break
                }
                if status != Z_OK && status != Z_BUF_ERROR {
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw DataFileError(file: name, reason: "the member's deflate data is corrupt: \(message)")
                }
                if stream.pointee.avail_out == before && stream.pointee.avail_in == 0 && compressedLeft == 0 {
                    throw truncated()
                }
            }
            n = min(count, Int(UInt32.max)) - Int(stream.pointee.avail_out)
            if n == 0 && streamEnded {
                try check()
                return 0
            }
        }
        crc = crc32(crc, buffer, UInt32(n))
        produced += UInt64(n)
        return n
    }

    /// At the member's end: the size and CRC-32 the central directory states.
    private func check() throws(DataFileError) {
        checked = true
        guard produced == member.size else {
            throw DataFileError(
                file: name, reason: "the member holds \(produced) bytes, the archive's directory says \(member.size)")
        }
        guard UInt32(truncatingIfNeeded: crc) == member.crc else {
            throw DataFileError(file: name, reason: "the member's CRC-32 does not match (corrupt data)")
        }
    }

    private func truncated() -> DataFileError {
        DataFileError(file: name, reason: "the member's data ends early (a truncated archive)")
    }

    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        if inflating {
            inflateEnd(stream)
            inflating = false
        }
        fclose(file)
        input.deallocate()
        stream.deallocate()
    }
}

@inline(__always) func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
@inline(__always) func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}
@inline(__always) func le64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32 }

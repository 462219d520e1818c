import COpenSSL
import Engine
import Foundation

/// The SHA-256 of a file's bytes as stored (a `.gz` is hashed compressed), in lowercase hex, and its size: what
/// `inputs.csv` records so that a run names exactly the data it read (docs/SPEC.md §12).
public func fileSHA256(_ path: String) throws(DataFileError) -> (hex: String, bytes: Int64) {
    guard let file = fopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be opened to hash it") }
    defer { fclose(file) }
    return try FileDigest(path: path).finish(readingRestOf: file)
}

/// A SHA-256 over a file's bytes as they are read (the readers hash what they read, so that `inputs.csv` costs no
/// second pass over the data).
final class FileDigest {
    private let path: String
    private let context: OpaquePointer
    private(set) var bytes: Int64 = 0

    init(path: String) throws(DataFileError) {
        self.path = path
        guard let context = EVP_MD_CTX_new() else {
            throw DataFileError(file: path, reason: "libcrypto has no digest context")
        }
        self.context = context
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            throw DataFileError(file: path, reason: "libcrypto refused SHA-256")
        }
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawPointer, count: Int) {
        guard count > 0 else { return }
        _ = EVP_DigestUpdate(context, bytes, count)
        self.bytes += Int64(count)
    }

    /// Hashes what is left of `file` (all of it, or what a reader left after its last read), then the digest and
    /// the bytes hashed.
    func finish(readingRestOf file: UnsafeMutablePointer<FILE>) throws(DataFileError) -> (hex: String, bytes: Int64) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            buffer.withUnsafeBytes { update($0.baseAddress!, count: n) }
            if n < buffer.count {
                if ferror(file) != 0 { throw DataFileError(file: path, reason: "read error while hashing") }
                break
            }
        }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1, length == 32 else {
            throw DataFileError(file: path, reason: "libcrypto could not finish SHA-256")
        }
        return (digest.prefix(32).map { String(format: "%02x", $0) }.joined(), bytes)
    }
}

/// `inputs.csv`: one row per input file in reading order, `kind,file,first,last,rows,bytes,sha256`; the span columns
/// are empty for a file listed without them (a grid's or walk-forward's inputs, read many times).
public enum InputIdentity {
    public static let header = "kind,file,first,last,rows,bytes,sha256"

    /// Rows for the files of a run whose spans are known.
    public static func csv(_ coverage: Coverage) throws(DataFileError) -> String {
        var out = header + "\n"
        for (kind, spans) in [("trades", coverage.trades), ("quotes", coverage.quotes ?? [])] {
            for s in spans {
                // Hashed as it was read, or now (an order-book archive, read by its own reader).
                var (hex, bytes) = (s.sha256 ?? "", s.bytes ?? 0)
                if s.sha256 == nil { (hex, bytes) = try fileSHA256(s.file) }
                out +=
                    "\(kind),\(csvField(s.file)),\(isoTime(s.first, milliseconds: true)),"
                    + "\(isoTime(s.last, milliseconds: true)),\(s.rows),\(bytes),\(hex)\n"
            }
        }
        return out
    }

    /// Rows for files named without their spans.
    public static func csv(trades: [String], quotes: [String]) throws(DataFileError) -> String {
        var out = header + "\n"
        for (kind, files) in [("trades", trades), ("quotes", quotes)] {
            for f in files {
                let (hex, bytes) = try fileSHA256(f)
                out += "\(kind),\(csvField(f)),,,,\(bytes),\(hex)\n"
            }
        }
        return out
    }
}

import COpenSSL
import Engine
import Foundation

/// The SHA-256 of a file's bytes as stored (a `.gz` is hashed compressed), in lowercase hex, and its size: what
/// `inputs.csv` records so that a run names exactly the data it read (docs/SPEC.md §12).
public func fileSHA256(_ path: String) throws(DataFileError) -> (hex: String, bytes: Int64) {
    guard let file = fopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be opened to hash it") }
    defer { fclose(file) }
    guard let ctx = EVP_MD_CTX_new() else { throw DataFileError(file: path, reason: "libcrypto has no digest context") }
    defer { EVP_MD_CTX_free(ctx) }
    guard EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1 else {
        throw DataFileError(file: path, reason: "libcrypto refused SHA-256")
    }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var total: Int64 = 0
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if n > 0 {
            _ = buffer.withUnsafeBytes { EVP_DigestUpdate(ctx, $0.baseAddress, n) }
            total += Int64(n)
        }
        if n < buffer.count {
            if ferror(file) != 0 { throw DataFileError(file: path, reason: "read error while hashing") }
            break
        }
    }
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    guard EVP_DigestFinal_ex(ctx, &digest, &length) == 1, length == 32 else {
        throw DataFileError(file: path, reason: "libcrypto could not finish SHA-256")
    }
    return (digest.prefix(32).map { String(format: "%02x", $0) }.joined(), total)
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
                let (hex, bytes) = try fileSHA256(s.file)
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

import COpenSSL

/// Bybit v5 request signatures (docs/BYBIT.md, "Signed REST requests" and "WebSocket streams").
public enum BybitSigner {
    /// `X-BAPI-SIGN`: lowercase hex HMAC-SHA256 of `timestamp + apiKey + recvWindow + payload` under the secret,
    /// where payload is the exact query string (GET) or JSON body (POST) sent.
    public static func restSignature(
        timestamp: Int64,
        apiKey: String,
        recvWindow: Int,
        payload: String,
        secret: String
    ) -> String {
        hmacSHA256Hex(key: secret, message: "\(timestamp)\(apiKey)\(recvWindow)\(payload)")
    }

    /// The private WebSocket `auth` signature: hex HMAC-SHA256 of `"GET/realtime" + expires` under the secret.
    public static func websocketSignature(expires: Int64, secret: String) -> String {
        hmacSHA256Hex(key: secret, message: "GET/realtime\(expires)")
    }

    /// Lowercase hex HMAC-SHA256 over OpenSSL's libcrypto.
    public static func hmacSHA256Hex(key: String, message: String) -> String {
        let keyBytes = Array(key.utf8)
        let messageBytes = Array(message.utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = keyBytes.withUnsafeBytes { k in
            messageBytes.withUnsafeBufferPointer { m in
                digest.withUnsafeMutableBufferPointer { d in
                    HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress, m.count, d.baseAddress, &length)
                }
            }
        }
        precondition(ok != nil && length == 32, "HMAC-SHA256 failed inside libcrypto")
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest.prefix(Int(length)) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

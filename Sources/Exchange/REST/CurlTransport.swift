import CCurl
import Foundation

/// An HTTP reply: status, headers (names lower-cased) and body.
public struct HTTPReply: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why a request got no HTTP reply.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The request timed out (it may still have reached the server).
    public var timedOut: Bool
    public var description: String { message }
}

/// What the REST transport does: send one request, get one reply. libcurl in production; tests may substitute.
public protocol HTTPTransport: Sendable {
    func send(method: String, url: String, headers: [String], body: [UInt8]?) throws(TransportError) -> HTTPReply
}

/// HTTP/1.1 over libcurl: one easy handle reused for connection keep-alive, connect and total timeouts, TLS
/// verification on, a response size limit.
public final class CurlTransport: HTTPTransport, @unchecked Sendable {
    // `lock` serialises every use of `handle`, which libcurl does not allow from two threads at once.
    private let lock = NSLock()
    private let handle: UnsafeMutableRawPointer
    public let connectTimeoutMs: Int
    public let totalTimeoutMs: Int
    public let maxResponseBytes: Int

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init(connectTimeoutMs: Int = 3_000, totalTimeoutMs: Int = 10_000, maxResponseBytes: Int = 8 << 20) {
        _ = Self.globalInit
        handle = curl_easy_init()
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.maxResponseBytes = maxResponseBytes
    }

    deinit { curl_easy_cleanup(handle) }

    /// Collects the reply while libcurl reads it.
    private final class Sink {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        var limit: Int
        var overflow = false
        init(limit: Int) { self.limit = limit }
    }

    public func send(method: String, url: String, headers: [String], body: [UInt8]?) throws(TransportError) -> HTTPReply
    {
        lock.lock()
        defer { lock.unlock() }
        let sink = Sink(limit: maxResponseBytes)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        curl_easy_reset(handle)
        at_curl_setopt_string(handle, CURLOPT_URL, url)
        at_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs)
        at_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, totalTimeoutMs)
        at_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        at_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        at_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        at_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        at_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        at_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        at_curl_setopt_write_function(handle) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            if sink.body.count + n > sink.limit {
                sink.overflow = true
                return 0  // aborts the transfer
            }
            data!.withMemoryRebound(to: UInt8.self, capacity: n) {
                sink.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
            }
            return n
        }
        at_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        at_curl_setopt_header_function(handle) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            let line = data!.withMemoryRebound(to: UInt8.self, capacity: n) {
                String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
            }
            if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                sink.headers[name] = value
            } else if line.hasPrefix("HTTP/") {
                sink.headers = [:]  // a new response (after a redirect or 100-continue)
            }
            return n
        }
        at_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)

        var list: UnsafeMutablePointer<curl_slist>?
        for h in headers { list = curl_slist_append(list, h) }
        list = curl_slist_append(list, "Expect:")  // no 100-continue round trip for small bodies
        defer { curl_slist_free_all(list) }
        at_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)

        var payload = body ?? []
        let code: CURLcode = payload.withUnsafeMutableBufferPointer { buffer in
            if method == "POST" {
                at_curl_setopt_long(handle, CURLOPT_POST, 1)
                at_curl_setopt_pointer(
                    handle, CURLOPT_POSTFIELDS,
                    UnsafeMutableRawPointer(buffer.baseAddress) ?? UnsafeMutableRawPointer(mutating: ""))
                at_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, buffer.count)
            } else if method != "GET" {
                at_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
            }
            return curl_easy_perform(handle)
        }
        if sink.overflow {
            throw TransportError(
                message: "\(method) \(url): reply larger than \(maxResponseBytes) bytes", timedOut: false)
        }
        guard code == CURLE_OK else {
            let text = String(cString: curl_easy_strerror(code))
            throw TransportError(message: "\(method) \(url): \(text)", timedOut: code == CURLE_OPERATION_TIMEDOUT)
        }
        var status = 0
        at_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPReply(status: status, headers: sink.headers, body: sink.body)
    }
}

import Exchange
import Foundation

/// A small HTTP/1.1 server on loopback for the simulated venue: one thread per connection, keep-alive,
/// `Content-Length` bodies. Connection-level faults (a stalled or dropped reply) are what it must control exactly,
/// which is why it is plain POSIX sockets rather than a framework.
public final class SimHTTPServer: @unchecked Sendable {
    // `listenFD` is written once in `start`; `stopped` and `connections` are guarded by `lock`.
    private let lock = NSLock()
    private var listenFD: Int32 = -1
    private var stopped = false
    private var connections: Set<Int32> = []
    private let handler: @Sendable (SimRequest) -> SimReply
    /// Serves an upgraded WebSocket until it ends (runs on the connection's thread).
    public var webSocketHandler: (@Sendable (SimRequest, WebSocketConnection) -> Void)?
    /// The port bound (useful with port 0).
    public private(set) var port: UInt16 = 0
    /// Largest request accepted (headers + body).
    public var maxRequestBytes = 1 << 20

    public init(handler: @escaping @Sendable (SimRequest) -> SimReply) {
        self.handler = handler
    }

    /// Binds 127.0.0.1:`port` (0: any free port) and starts accepting on a background thread.
    public func start(port: UInt16 = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimServerError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw SimServerError("bind 127.0.0.1:\(port): \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        listenFD = fd
        let thread = Thread { [self] in acceptLoop(fd) }
        thread.name = "sim-http-accept"
        thread.start()
    }

    /// Stops accepting and closes every connection.
    public func stop() {
        let (fd, open): (Int32, Set<Int32>) = lock.withLock {
            stopped = true
            return (listenFD, connections)
        }
        if fd >= 0 {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
        for c in open { shutdown(c, Int32(SHUT_RDWR)) }
    }

    /// Open connections (for leak checks).
    public var openConnections: Int { lock.withLock { connections.count } }

    private func acceptLoop(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if lock.withLock({ stopped }) { return }
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            lock.withLock { _ = connections.insert(client) }
            let thread = Thread { [self] in
                serve(client)
                lock.withLock { _ = connections.remove(client) }
                close(client)
            }
            thread.name = "sim-http-conn"
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            // Read until a full request (headers, then Content-Length bytes) is buffered.
            var request: (SimRequest, Int)?
            while request == nil {
                if let parsed = parseRequest(buffer) {
                    request = parsed
                    break
                }
                if buffer.count > maxRequestBytes { return }
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                buffer.append(contentsOf: chunk[0..<n])
            }
            guard let (req, used) = request else { return }
            buffer.removeFirst(used)
            if req.headers["upgrade"]?.lowercased() == "websocket", let key = req.headers["sec-websocket-key"],
                let ws = webSocketHandler
            {
                let connection = WebSocketConnection(fd: fd, leftover: buffer)
                guard connection.handshake(key: key) else { return }
                ws(req, connection)
                return
            }
            let reply = handler(req)
            if reply.delayMs > 0 { sleepMillis(reply.delayMs) }
            reply.hold?.wait()
            if reply.drop { return }
            var head = "HTTP/1.1 \(reply.status) \(reasonPhrase(reply.status))\r\n"
            for (k, v) in reply.headers { head += "\(k): \(v)\r\n" }
            head += "Content-Length: \(reply.body.count)\r\nConnection: keep-alive\r\n\r\n"
            var out = Array(head.utf8)
            out.append(contentsOf: reply.body)
            var sent = 0
            while sent < out.count {
                let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                sent += n
            }
            if req.headers["connection"]?.lowercased() == "close" { return }
        }
    }

    /// A complete request at the start of `bytes`, and how many bytes it took; nil when more are needed.
    private func parseRequest(_ bytes: [UInt8]) -> (SimRequest, Int)? {
        guard let end = findHeaderEnd(bytes) else { return nil }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        guard !lines.isEmpty else { return nil }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] =
                line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = end + 4
        guard bytes.count >= bodyStart + length else { return nil }
        let target = String(requestLine[1])
        let path: String
        let query: String
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            query = String(target[target.index(after: q)...])
        } else {
            path = target
            query = ""
        }
        let body = Array(bytes[bodyStart..<(bodyStart + length)])
        return (
            SimRequest(method: String(requestLine[0]), path: path, query: query, headers: headers, body: body),
            bodyStart + length
        )
    }

    private func findHeaderEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    private func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

/// The simulator's server could not start.
public struct SimServerError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

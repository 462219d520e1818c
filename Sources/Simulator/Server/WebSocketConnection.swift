import COpenSSL
import Foundation

/// The server side of one WebSocket (RFC 6455) over a connected socket: the upgrade handshake, reading masked
/// client frames, writing unmasked server frames. Enough for Bybit's text protocol; used only on loopback.
public final class WebSocketConnection: @unchecked Sendable {
    // Used by the one thread that serves the connection; `closed` is also read by `close()` from elsewhere
    // under `lock`.
    private let lock = NSLock()
    let fd: Int32
    private var buffer: [UInt8]
    private var closed = false
    /// Largest message accepted from a client.
    public var maxMessageBytes = 1 << 20

    init(fd: Int32, leftover: [UInt8]) {
        self.fd = fd
        buffer = leftover
    }

    /// `Sec-WebSocket-Accept` for a client key.
    static func acceptKey(_ key: String) -> String {
        let input = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        _ = SHA1(input, input.count, &digest)
        return Data(digest).base64EncodedString()
    }

    /// Answers the upgrade request.
    func handshake(key: String) -> Bool {
        let reply =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(Self.acceptKey(key))\r\n\r\n"
        return writeAll(Array(reply.utf8))
    }

    /// What a read returned.
    public enum Incoming: Equatable {
        case text(String)
        case ping
        case close
        /// Nothing within the wait.
        case idle
    }

    /// Waits up to `timeoutMs` for a client message.
    public func read(timeoutMs: Int32) -> Incoming {
        while true {
            if let frame = parseFrame() { return frame }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, timeoutMs)
            if ready == 0 { return .idle }
            if ready < 0 { return errno == EINTR ? .idle : .close }
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return .close }
            buffer.append(contentsOf: chunk[0..<n])
            if buffer.count > maxMessageBytes + 14 { return .close }
        }
    }

    private func parseFrame() -> Incoming? {
        guard buffer.count >= 2 else { return nil }
        let opcode = buffer[0] & 0x0F
        let masked = buffer[1] & 0x80 != 0
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = 0
            for i in 2..<10 { length = length << 8 | Int(buffer[i]) }
            offset = 10
        }
        guard length <= maxMessageBytes else { return .close }
        var mask: [UInt8] = [0, 0, 0, 0]
        if masked {
            guard buffer.count >= offset + 4 else { return nil }
            mask = Array(buffer[offset..<(offset + 4)])
            offset += 4
        }
        guard buffer.count >= offset + length else { return nil }
        var payload = Array(buffer[offset..<(offset + length)])
        if masked { for i in payload.indices { payload[i] ^= mask[i & 3] } }
        buffer.removeFirst(offset + length)
        switch opcode {
        case 0x1: return .text(String(decoding: payload, as: UTF8.self))
        case 0x8: return .close
        case 0x9:
            _ = writeFrame(opcode: 0xA, payload)
            return .ping
        default: return parseFrame() ?? .idle  // pong, binary, continuation: ignored
        }
    }

    /// Sends a text message.
    @discardableResult
    public func send(_ text: String) -> Bool { writeFrame(opcode: 0x1, Array(text.utf8)) }

    /// Closes the socket at once, without a close frame (a dropped connection).
    public func drop() {
        lock.withLock {
            guard !closed else { return }
            closed = true
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    /// Sends a close frame.
    public func close() {
        _ = writeFrame(opcode: 0x8, [0x03, 0xE8])
        drop()
    }

    private func writeFrame(opcode: UInt8, _ payload: [UInt8]) -> Bool {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        frame += payload
        return writeAll(frame)
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }
}

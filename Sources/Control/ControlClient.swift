import ControlProtocol
import Foundation

/// How an atctl run ended; the raw value is the exit status.
enum Outcome: Int32, Error {
    case done = 0
    case refused = 1
    case usage = 2
    case unreachable = 3
    case timeout = 4
}

/// A failure with its exit status and the line to print.
struct ClientFailure: Error {
    var outcome: Outcome
    var message: String
}

/// One connection to the agent's control socket: JSON lines each way.
final class ControlConnection {
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var nextId = 1

    /// Connects; an absent socket, a refused connection or a permission problem is `unreachable`.
    init(path: String, timeoutSeconds: Double) throws(ClientFailure) {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            throw ClientFailure(outcome: .unreachable, message: "socket(): \(String(cString: strerror(errno)))")
        }
        guard var addr = unixSocketAddress(path) else {
            close(fd)
            throw ClientFailure(outcome: .usage, message: "socket path too long: \(path)")
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard r == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ClientFailure(
                outcome: .unreachable,
                message: "agent unreachable at \(path): \(reason) (is it running? `systemctl status auction-agent`)")
        }
        self.fd = fd
        setTimeout(timeoutSeconds)
    }

    deinit { close(fd) }

    func setTimeout(_ seconds: Double) {
        let s = max(seconds, 0.001)
        var tv = timeval(tv_sec: Int(s), tv_usec: Int((s - s.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends a request and returns the raw reply line.
    func call(_ cmd: String, args: [String: ControlArg] = [:]) throws(ClientFailure) -> Data {
        let request = ControlRequest(id: nextId, cmd: cmd, args: args)
        nextId += 1
        var line = (try? JSONEncoder().encode(request)) ?? Data()
        line.append(0x0A)
        let sent = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == line.count else {
            // The agent may have answered and closed before reading (a refused peer): its reply is still readable.
            if let reply = try? readLine() { return reply }
            throw ClientFailure(outcome: .unreachable, message: "the agent closed the connection (\(path))")
        }
        return try readLine()
    }

    private func readLine() throws(ClientFailure) -> Data {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw ClientFailure(outcome: .timeout, message: "no answer from the agent in time (--timeout)")
            }
            if n <= 0 {
                throw ClientFailure(outcome: .unreachable, message: "the agent closed the connection (\(path))")
            }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Calls and decodes the result, turning an error reply into the matching failure.
    func request<R: Codable & Sendable>(_ cmd: String, args: [String: ControlArg] = [:], as: R.Type)
        throws(ClientFailure) -> (R?, Data)
    {
        let line = try call(cmd, args: args)
        try Self.check(line)
        do {
            return (try JSONDecoder().decode(ControlReply<R>.self, from: line).result, line)
        } catch {
            throw ClientFailure(
                outcome: .refused, message: "unexpected reply: \(String(decoding: line.prefix(300), as: UTF8.self))")
        }
    }

    /// Throws the failure an error reply describes.
    static func check(_ line: Data) throws(ClientFailure) {
        guard let head = try? JSONDecoder().decode(ControlReply<NoResult>.self, from: line) else {
            // A result that does not decode as NoResult is still a success reply if ok is true; check loosely.
            if let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any], obj["ok"] as? Bool == true {
                return
            }
            throw ClientFailure(
                outcome: .refused, message: "unexpected reply: \(String(decoding: line.prefix(300), as: UTF8.self))")
        }
        if head.ok { return }
        let e = head.error ?? ControlFailure(ControlFailure.failed, "no reason given")
        throw ClientFailure(
            outcome: e.code == ControlFailure.timeout ? .timeout : .refused, message: "\(e.message) [\(e.code)]")
    }
}

import CSystemd
public import ControlProtocol
import Foundation
public import Logging

/// The control socket (docs/DESIGN.md, "Control socket"): a Unix stream socket, mode 0660, one JSON request per line and
/// one reply per line. Peers are checked by their credentials: root, the agent's own uid, or a member of its group.
///
/// Read commands are answered from what the engine last published (and from the database), so no client can hold
/// the engine up; commands that change something enter the engine's queue in order with market data, and the
/// connection waits for the engine's answer. Each connection has its own thread, a size limit per line, an idle
/// timeout and a send timeout; a bad line gets an error reply and the connection stays usable.
public final class ControlServer: @unchecked Sendable {
    public let path: String
    private let board: StatusBoard
    private let store: AgentStore
    private let queue: EventQueue
    private let logger: Logger
    private let versionInfo: VersionReport
    /// Counts the read commands (the engine counts the ones that change something when it records them).
    public var metrics: AgentMetrics?
    /// Largest request line (bytes).
    public var maxLineBytes = 64 * 1024
    /// A connection that sends no complete line for this long is closed (ms).
    public var idleTimeoutMs = 30_000
    public var maxConnections = 64
    /// How long a changing command may wait for the engine (flatten uses its own timeout on top).
    public var engineTimeoutMs: Int64 = 10_000

    private let lock = NSLock()
    // Guarded by `lock`.
    private var listenFd: Int32 = -1
    /// The inode of the socket file we bound: stop removes the file only while it is still ours.
    private var boundInode: UInt64 = 0
    private var stopped = false
    private var connections = 0
    private var served = 0

    public init(
        path: String, board: StatusBoard, store: AgentStore, queue: EventQueue, logger: Logger,
        versionInfo: VersionReport
    ) {
        self.path = path
        self.board = board
        self.store = store
        self.queue = queue
        self.logger = logger
        self.versionInfo = versionInfo
    }

    /// Binds the socket. A socket file left by a dead agent is replaced; a live agent's socket, or a file that is
    /// not a socket, is an error (nothing is deleted).
    public func start() throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw CommandError("\(path) exists and is not a socket; not replacing it")
            }
            if Self.isAlive(path) { throw CommandError("another agent is serving \(path); stop it first") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandError("socket(): \(String(cString: strerror(errno)))") }
        var addr = try Self.address(path)
        // Created with 0660 from the start: no window in which others could connect.
        let oldMask = umask(0o117)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(oldMask)
        guard bound == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw CommandError("cannot bind \(path): \(e)")
        }
        chmod(path, 0o660)
        var created = stat()
        if stat(path, &created) == 0 { lock.withLock { boundInode = UInt64(created.st_ino) } }
        guard listen(fd, 64) == 0 else {
            close(fd)
            throw CommandError("listen on \(path): \(String(cString: strerror(errno)))")
        }
        lock.withLock { listenFd = fd }
        let t = Thread { [self] in acceptLoop(fd) }
        t.name = "control-accept"
        t.start()
        logger.info("control socket listening", metadata: ["event": "control.listening", "path": "\(path)"])
    }

    public func stop() {
        let fd = lock.withLock { () -> Int32 in
            stopped = true
            defer { listenFd = -1 }
            return listenFd
        }
        if fd >= 0 {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
        // Another agent may have replaced a socket it found dead; never remove its file.
        var st = stat()
        if stat(path, &st) == 0, UInt64(st.st_ino) == lock.withLock({ boundInode }) { unlink(path) }
    }

    /// Connections accepted so far (tests and benchmarks).
    public var connectionsServed: Int { lock.withLock { served } }

    static func address(_ path: String) throws -> sockaddr_un {
        guard let addr = unixSocketAddress(path) else { throw CommandError("socket path too long: \(path)") }
        return addr
    }

    static func isAlive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, var addr = try? address(path) else { return false }
        defer { close(fd) }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return r == 0
    }

    private func acceptLoop(_ fd: Int32) {
        while !lock.withLock({ stopped }) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, 250)
            if r <= 0 { continue }
            let client = accept(fd, nil, nil)
            if client < 0 { continue }
            var pid: pid_t = 0
            var uid: uid_t = 0
            var gid: gid_t = 0
            guard at_peer_credentials(client, &pid, &uid, &gid) == 0 else {
                close(client)
                continue
            }
            guard Self.peerAllowed(uid: uid, gid: gid) else {
                logger.warning(
                    "control connection refused",
                    metadata: [
                        "event": "control.refused", "peer.uid": "\(uid)", "peer.gid": "\(gid)",
                        "peer.pid": "\(pid)",
                    ])
                setTimeouts(client, receiveMs: 1_000, sendMs: 1_000)
                send(
                    client,
                    encodeReply(
                        ControlReply<NoResult>(
                            id: nil,
                            error: ControlFailure(
                                ControlFailure.permissionDenied,
                                "uid \(uid) may not use this socket (root, uid \(getuid()) or group \(getgid()) only)"))
                    ))
                close(client)
                continue
            }
            let admitted = lock.withLock { () -> Bool in
                guard connections < maxConnections else { return false }
                connections += 1
                served += 1
                return true
            }
            guard admitted else {
                setTimeouts(client, receiveMs: 1_000, sendMs: 1_000)
                send(
                    client,
                    encodeReply(
                        ControlReply<NoResult>(
                            id: nil, error: ControlFailure(ControlFailure.refused, "too many connections"))))
                close(client)
                continue
            }
            let peer = uid
            let t = Thread { [self] in
                serve(client, uid: peer)
                close(client)
                lock.withLock { connections -= 1 }
            }
            t.name = "control-conn"
            t.stackSize = 512 * 1024
            t.start()
        }
    }

    /// Root, the agent's own uid, or the agent's group.
    static func peerAllowed(uid: uid_t, gid: gid_t) -> Bool {
        uid == 0 || uid == getuid() || gid == getgid()
    }

    private func setTimeouts(_ fd: Int32, receiveMs: Int, sendMs: Int) {
        var rcv = timeval(tv_sec: receiveMs / 1000, tv_usec: (receiveMs % 1000) * 1000)
        var snd = timeval(tv_sec: sendMs / 1000, tv_usec: (sendMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, socklen_t(MemoryLayout<timeval>.size))
    }

    @discardableResult
    private func send(_ fd: Int32, _ line: Data) -> Bool {
        var bytes = [UInt8](line)
        bytes.append(0x0A)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Foundation.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private func serve(_ fd: Int32, uid: uid_t) {
        setTimeouts(fd, receiveMs: idleTimeoutMs, sendMs: 5_000)
        var buffer: [UInt8] = []
        var discarding = false
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while !lock.withLock({ stopped }) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // closed, error or idle timeout
            var start = 0
            for i in 0..<n where chunk[i] == 0x0A {
                if discarding {
                    discarding = false
                } else {
                    buffer.append(contentsOf: chunk[start..<i])
                    if buffer.count > maxLineBytes {
                        if !send(fd, tooLargeReply) { return }
                    } else if !handleLine(buffer, fd: fd, uid: uid) {
                        return
                    }
                }
                buffer.removeAll(keepingCapacity: true)
                start = i + 1
            }
            if !discarding { buffer.append(contentsOf: chunk[start..<n]) }
            if buffer.count > maxLineBytes {
                buffer.removeAll()
                discarding = true
                if !send(fd, tooLargeReply) { return }
            }
        }
    }

    private var tooLargeReply: Data {
        encodeReply(
            ControlReply<NoResult>(
                id: nil,
                error: ControlFailure(
                    ControlFailure.tooLarge, "request line over \(maxLineBytes) bytes; discarded up to the next newline"
                )))
    }

    /// Answers one line; false when the connection should close (the peer stopped reading).
    private func handleLine(_ line: [UInt8], fd: Int32, uid: uid_t) -> Bool {
        var trimmed = line[...]
        while let last = trimmed.last, last == 0x0D || last == 0x20 || last == 0x09 { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty { return true }
        let reply = answer(Data(trimmed), uid: uid)
        return send(fd, reply)
    }

    /// The reply to one request line.
    func answer(_ line: Data, uid: uid_t) -> Data {
        guard String(validating: line, as: UTF8.self) != nil else {
            return encodeReply(
                ControlReply<NoResult>(
                    id: nil, error: ControlFailure(ControlFailure.badRequest, "request is not valid UTF-8")))
        }
        let request: ControlRequest
        do {
            request = try JSONDecoder().decode(ControlRequest.self, from: line)
        } catch {
            return encodeReply(
                ControlReply<NoResult>(
                    id: nil,
                    error: ControlFailure(
                        ControlFailure.badRequest,
                        #"expected one JSON object per line: {"id":1,"cmd":"status","args":{}}"#)))
        }
        guard
            let command = ControlCommand(rawValue: request.cmd)
                ?? (request.cmd == "kill-switch" ? .killSwitchReset : nil)
        else {
            let known = ControlCommand.allCases.map(\.rawValue).joined(separator: ", ")
            return encodeReply(
                ControlReply<NoResult>(
                    id: request.id,
                    error: ControlFailure(
                        ControlFailure.unknownCommand, "unknown command '\(request.cmd.prefix(64))'; known: \(known)")))
        }
        if request.cmd == "kill-switch", request.args?["action"] != .string("reset") {
            return encodeReply(
                ControlReply<NoResult>(
                    id: request.id,
                    error: ControlFailure(
                        ControlFailure.badArguments, #"kill-switch takes {"action":"reset"}"#)))
        }
        if command.isMutating { return viaEngine(request, command, uid: uid) }
        let reply = read(request, command)
        // Keys are sorted: a failure's reply begins with its "error" object.
        metrics?.command(command.rawValue, result: reply.starts(with: Data(#"{"error""#.utf8)) ? "error" : "ok")
        return reply
    }

    private func read(_ request: ControlRequest, _ command: ControlCommand) -> Data {
        let id = request.id
        if command == .version { return encodeReply(ControlReply(id: id, result: versionInfo)) }
        guard let state = board.current else {
            return encodeReply(
                ControlReply<NoResult>(
                    id: id, error: ControlFailure(ControlFailure.refused, "the agent is starting; try again")))
        }
        func last(_ fallback: Int) -> Int? {
            guard let a = request.args?["last"] else { return fallback }
            guard let n = a.integer, n >= 1, n <= 10_000 else { return nil }
            return n
        }
        switch command {
        case .status: return encodeReply(ControlReply(id: id, result: state.status))
        case .health: return encodeReply(ControlReply(id: id, result: state.status.health))
        case .positions: return encodeReply(ControlReply(id: id, result: state.positions))
        case .orders: return encodeReply(ControlReply(id: id, result: state.orders))
        case .pnl: return encodeReply(ControlReply(id: id, result: state.status.pnl))
        case .va:
            guard let va = state.valueArea else {
                return encodeReply(
                    ControlReply<NoResult>(
                        id: id, error: ControlFailure(ControlFailure.refused, "no minute has closed yet")))
            }
            return encodeReply(ControlReply(id: id, result: va))
        case .signals, .alerts:
            guard let n = last(20) else {
                return encodeReply(
                    ControlReply<NoResult>(
                        id: id, error: ControlFailure(ControlFailure.badArguments, "last must be 1...10000")))
            }
            do {
                if command == .signals {
                    let rows = try store.recentSignals(n).reversed().map {
                        SignalReport(
                            minute: isoTime($0.ts), action: $0.action, reason: $0.reason,
                            detected: $0.detected.split(separator: " ").map(String.init), acceptanceAbove: $0.above,
                            acceptanceBelow: $0.below)
                    }
                    return encodeReply(ControlReply(id: id, result: rows))
                }
                let rows = try store.recentAlerts(n).reversed().map {
                    AlertReport(
                        time: isoTime($0.wallTs, milliseconds: true), kind: $0.kind, severity: $0.severity,
                        message: $0.message)
                }
                return encodeReply(ControlReply(id: id, result: rows))
            } catch {
                return encodeReply(
                    ControlReply<NoResult>(
                        id: id, error: ControlFailure(ControlFailure.failed, "database read failed: \(error)")))
            }
        default:
            return encodeReply(
                ControlReply<NoResult>(id: id, error: ControlFailure(ControlFailure.unknownCommand, request.cmd)))
        }
    }

    private func viaEngine(_ request: ControlRequest, _ command: ControlCommand, uid: uid_t) -> Data {
        let box = OneShot<Data>()
        queue.put(.command(ControlCall(request: request, command: command, peerUid: uid, reply: { box.set($0) })))
        var wait = engineTimeoutMs
        if command == .flatten { wait += Int64(request.args?["timeout"]?.integer ?? 60) * 1000 }
        if let reply = box.wait(ms: wait) { return reply }
        return encodeReply(
            ControlReply<NoResult>(
                id: request.id,
                error: ControlFailure(
                    ControlFailure.timeout, "the engine did not answer within \(wait / 1000) s")))
    }
}

/// A value handed once from one thread to others that wait for it (a reply from the engine thread, the port the
/// HTTP server bound, the end of a service group). The first `set` wins.
final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var stored: Value?

    func set(_ v: Value) {
        condition.lock()
        if stored == nil { stored = v }
        condition.broadcast()
        condition.unlock()
    }

    var value: Value? {
        condition.lock()
        defer { condition.unlock() }
        return stored
    }

    /// The value, waiting up to `ms` for it (nil: none came in time); without `ms`, as long as it takes.
    func wait(ms: Int64? = nil) -> Value? {
        condition.lock()
        defer { condition.unlock() }
        guard let ms else {
            while stored == nil { condition.wait() }
            return stored
        }
        let deadline = Date(timeIntervalSinceNow: Double(ms) / 1000)
        while stored == nil {
            if !condition.wait(until: deadline) { break }
        }
        return stored
    }
}

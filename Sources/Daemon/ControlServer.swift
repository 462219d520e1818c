import AgentConfig
import AgentSupport
import CSystemd
public import ControlProtocol
import Engine
import ExchangeStreams
import Foundation
public import Logging
import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

// `stat`'s members are attributed to CDispatch by some incremental builds (MemberImportVisibility): import it too.
#if canImport(CDispatch)
    import CDispatch
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The control socket (docs/DESIGN.md, "Control socket"): a Unix stream socket, mode 0660, one JSON request per line and
/// one reply per line. Peers are checked by their credentials (`SO_PEERCRED`): root, the agent's own uid, or a member
/// of its group.
///
/// Read commands are answered from what the engine last published (and from the database), so no client can hold
/// the engine up; commands that change something enter the engine's queue in order with market data, and the
/// connection waits for the engine's answer. Connections are NIO channels on the shared event loops
/// (`NIOAsyncChannel`, framed by `ControlLineDecoder`), each served by a task of `run()`: a size limit per line, an
/// idle timeout (a peer that neither sends nor reads is closed); a bad line gets an error reply and the connection
/// stays usable.
///
/// A lifecycle `Service`: `start()` binds (before the agent reports READY, so a socket it cannot have refuses the
/// start), `run()` serves until the graceful stop, then closes every connection and removes the socket file.
public final class ControlServer: Service, Sendable {
    public let path: String
    private let board: StatusBoard
    private let store: AgentStore
    private let queue: EventQueue
    private let logger: Logger
    private let versionInfo: VersionReport
    /// Counts the read commands (the engine counts the ones that change something when it records them).
    let metrics: AgentMetrics?
    /// Largest request line (bytes).
    public let maxLineBytes: Int
    /// A connection that sends nothing for this long is closed (ms).
    public let idleTimeoutMs: Int64
    public let maxConnections: Int
    /// How long a changing command may wait for the engine (flatten uses its own timeout on top).
    public let engineTimeoutMs: Int64

    private struct State {
        var channel: NIOAsyncChannel<NIOAsyncChannel<ControlFrame, ByteBuffer>, Never>?
        /// The inode of the socket file we bound: stop removes the file only while it is still ours.
        var boundInode: UInt64 = 0
        var stopped = false
        var connections = 0
        var served = 0
    }
    private let state = Mutex(State())
    /// Every accepted connection until it is served. NIO drops a connection accepted while the listener closes
    /// without handing it to `run()`; its writer then dies unfinished, which NIO treats as a fatal error (it crashed
    /// the test process twice). Holding it here keeps it alive, and `serve` closes those never handed over. Once
    /// `serve` has closed them (`closed`), a connection still accepted is refused before any writer exists: one
    /// registered after that sweep would be released unfinished when the server goes away.
    private let accepted = Mutex(Accepted())
    private struct Accepted {
        var connections: [ObjectIdentifier: NIOAsyncChannel<ControlFrame, ByteBuffer>] = [:]
        var closed = false
    }

    public init(
        path: String, board: StatusBoard, store: AgentStore, queue: EventQueue, logger: Logger,
        versionInfo: VersionReport, metrics: AgentMetrics? = nil, maxLineBytes: Int = 64 * 1024,
        idleTimeoutMs: Int64 = 30_000, maxConnections: Int = 64, engineTimeoutMs: Int64 = 10_000
    ) {
        self.path = path
        self.board = board
        self.store = store
        self.queue = queue
        self.logger = logger
        self.versionInfo = versionInfo
        self.metrics = metrics
        self.maxLineBytes = maxLineBytes
        self.idleTimeoutMs = idleTimeoutMs
        self.maxConnections = maxConnections
        self.engineTimeoutMs = engineTimeoutMs
    }

    deinit {
        // A server started but never run (tests, tools) may still hold connections it accepted: finished properly.
        let left = accepted.withLock { a in
            defer {
                a.connections.removeAll()
                a.closed = true
            }
            return Array(a.connections.values)
        }
        guard !left.isEmpty else { return }
        Task { for c in left { try? await c.executeThenClose { _, _ in } } }
    }

    /// Binds the socket. A socket file left by a dead agent is replaced; a live agent's socket, or a file that is
    /// not a socket, is an error (nothing is deleted).
    public func start() async throws {
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
        let (maxLine, idle) = (maxLineBytes, idleTimeoutMs)
        // The socket file is created with at most 0660 (the mode of the unbound socket, less the umask) and then
        // set to exactly 0660: no window in which others could connect, and no process-wide umask change, which
        // would reach every file another thread creates meanwhile.
        let fd = try Self.boundSocket(path, mode: 0o660)
        let channel: NIOAsyncChannel<NIOAsyncChannel<ControlFrame, ByteBuffer>, Never>
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(fd) { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(ControlLineDecoder(maxLineBytes: maxLine)),
                            ControlIdleTimeout(timeout: .milliseconds(idle)))
                        return try self.accepted.withLock { a in
                            guard !a.closed else { throw ChannelError.ioOnClosedChannel }
                            let connection = try NIOAsyncChannel<ControlFrame, ByteBuffer>(
                                wrappingChannelSynchronously: child)
                            a.connections[ObjectIdentifier(child)] = connection
                            return connection
                        }
                    }
                }
        } catch {
            unlink(path)
            throw CommandError("cannot listen on \(path): \(error)")
        }
        chmod(path, 0o660)
        var created = stat()
        let inode = stat(path, &created) == 0 ? UInt64(created.st_ino) : 0
        state.withLock {
            $0.channel = channel
            $0.boundInode = inode
        }
        logger.info("control socket listening", metadata: ["event": "control.listening", "path": "\(path)"])
    }

    /// Serves connections until the graceful stop (or `stop()`), then closes them and removes the socket file.
    /// Binds first if `start()` was not called.
    public func run() async throws {
        if state.withLock({ $0.channel == nil && !$0.stopped }) { try await start() }
        guard let channel = state.withLock({ $0.channel }) else { return }
        await withTaskExecutorPreference(executor) { await serve(channel) }
        stop()
    }

    /// The connections' tasks run on a thread of their own: the socket answers while the shared pool is busy.
    private let executor = DedicatedExecutor(label: "control")

    /// Serves until `stop()`, outside a service group (tests, tools). The task starts on the server's own thread,
    /// so it runs even while every thread of the shared pool is blocked.
    public func serveInBackground() -> Task<Void, any Error> {
        Task(executorPreference: executor) { try await self.run() }
    }

    private func serve(_ channel: NIOAsyncChannel<NIOAsyncChannel<ControlFrame, ByteBuffer>, Never>) async {
        await withGracefulShutdownHandler {
            try? await channel.executeThenClose { accepted in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in accepted {
                            group.addTask { await self.serve(connection) }
                        }
                    } catch {}
                    // The listener is closed: connections still open end now, not at their idle timeout.
                    group.cancelAll()
                }
            }
            // Connections accepted as the listener closed, never handed over: finished and closed properly.
            for connection in self.accepted.withLock({ a in
                defer {
                    a.connections.removeAll()
                    a.closed = true
                }
                return Array(a.connections.values)
            }) {
                try? await connection.executeThenClose { _, _ in }
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops listening and removes the socket file (idempotent); `run()` then closes the open connections.
    public func stop() {
        let (channel, inode) = state.withLock {
            s -> (NIOAsyncChannel<NIOAsyncChannel<ControlFrame, ByteBuffer>, Never>?, UInt64) in
            s.stopped = true
            defer { s.channel = nil }
            return (s.channel, s.boundInode)
        }
        channel?.channel.close(promise: nil)
        // Another agent may have replaced a socket it found dead; never remove its file.
        var st = stat()
        if inode != 0, stat(path, &st) == 0, UInt64(st.st_ino) == inode { unlink(path) }
    }

    /// Connections accepted so far (tests and benchmarks).
    public var connectionsServed: Int { state.withLock { $0.served } }

    static func address(_ path: String) throws -> sockaddr_un {
        guard let addr = unixSocketAddress(path) else { throw CommandError("socket path too long: \(path)") }
        return addr
    }

    /// A stream socket bound to `path`, its file created with `mode` at most (Linux gives the file the unbound
    /// socket's mode less the umask). NIO listens on it.
    static func boundSocket(_ path: String, mode: mode_t) throws -> CInt {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw CommandError("cannot create a socket for \(path): \(String(cString: strerror(errno)))")
        }
        guard fchmod(fd, mode) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CommandError("cannot set the mode of the socket for \(path): \(reason)")
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard r == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CommandError("cannot listen on \(path): \(reason)")
        }
        return fd
    }

    package static func isAlive(_ path: String) -> Bool {
        guard var addr = try? address(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return r == 0
    }

    /// Root, the agent's own uid, or the agent's group.
    static func peerAllowed(uid: uid_t, gid: gid_t) -> Bool {
        uid == 0 || uid == getuid() || gid == getgid()
    }

    /// One connection: the peer is checked, then each line answered in order until the peer closes, stays idle
    /// past the timeout, or the server stops.
    private func serve(_ connection: NIOAsyncChannel<ControlFrame, ByteBuffer>) async {
        _ = accepted.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(connection.channel)) }
        let peer = await Self.peerCredentials(connection.channel)
        try? await connection.executeThenClose { inbound, outbound in
            guard let peer else { return }
            guard Self.peerAllowed(uid: peer.uid, gid: peer.gid) else {
                logger.warning(
                    "control connection refused",
                    metadata: [
                        "event": "control.refused", "peer.uid": "\(peer.uid)", "peer.gid": "\(peer.gid)",
                        "peer.pid": "\(peer.pid)",
                    ])
                try await outbound.write(
                    Self.line(
                        encodeReply(
                            ControlReply<NoResult>(
                                id: nil,
                                error: ControlFailure(
                                    ControlFailure.permissionDenied,
                                    "uid \(peer.uid) may not use this socket (root, uid \(getuid()) or group \(getgid()) only)"
                                )))))
                return
            }
            let admitted = state.withLock { s -> Bool in
                guard s.connections < maxConnections else { return false }
                s.connections += 1
                s.served += 1
                return true
            }
            guard admitted else {
                try await outbound.write(
                    Self.line(
                        encodeReply(
                            ControlReply<NoResult>(
                                id: nil, error: ControlFailure(ControlFailure.refused, "too many connections")))))
                return
            }
            defer { state.withLock { $0.connections -= 1 } }
            for try await frame in inbound {
                switch frame {
                case .tooLarge:
                    try await outbound.write(Self.line(tooLargeReply))
                case .line(let bytes):
                    try await outbound.write(Self.line(await answer(Data(bytes.readableBytesView), uid: peer.uid)))
                }
            }
        }
    }

    /// The peer's pid, uid and gid from the kernel (nil: unreadable, the connection is closed unanswered).
    private static func peerCredentials(_ channel: any Channel) async -> (pid: pid_t, uid: uid_t, gid: gid_t)? {
        #if os(Linux)
            guard let provider = channel as? any SocketOptionProvider else { return nil }
            let future: EventLoopFuture<at_peer_cred> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(at_so_peercred))
            guard let cred = try? await future.get() else { return nil }
            return (cred.pid, cred.uid, cred.gid)
        #else
            return nil
        #endif
    }

    private static func line(_ reply: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(reply.count + 1)
        buffer.writeBytes(reply)
        buffer.writeInteger(UInt8(0x0A))
        return buffer
    }

    private var tooLargeReply: Data {
        encodeReply(
            ControlReply<NoResult>(
                id: nil,
                error: ControlFailure(
                    ControlFailure.tooLarge, "request line over \(maxLineBytes) bytes; discarded up to the next newline"
                )))
    }

    /// The reply to one request line.
    func answer(_ line: Data, uid: uid_t) async -> Data {
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
        if command.isMutating { return await viaEngine(request, command, uid: uid) }
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

    private func viaEngine(_ request: ControlRequest, _ command: ControlCommand, uid: uid_t) async -> Data {
        let pending = PendingReply()
        queue.put(
            .command(ControlCall(request: request, command: command, peerUid: uid, reply: { pending.resolve($0) })))
        var wait = engineTimeoutMs
        if command == .flatten { wait += Int64(request.args?["timeout"]?.integer ?? 60) * 1000 }
        let timer = Task(executorPreference: executor) {
            try? await Task.sleep(for: .milliseconds(wait))
            pending.resolve(nil)
        }
        defer { timer.cancel() }
        if let reply = await withTaskCancellationHandler(
            operation: { await pending.value() }, onCancel: { pending.resolve(nil) })
        {
            return reply
        }
        return encodeReply(
            ControlReply<NoResult>(
                id: request.id,
                error: ControlFailure(
                    ControlFailure.timeout, "the engine did not answer within \(wait / 1000) s")))
    }
}

/// The engine's answer to one changing command, handed from the engine thread to the connection's task; the first
/// `resolve` wins (the answer, or nil at the timeout or when the connection's task is cancelled).
final class PendingReply: Sendable {
    private enum State {
        case empty
        case awaited(CheckedContinuation<Data?, Never>)
        case resolved(Data?)
    }
    private let state = Mutex(State.empty)

    func resolve(_ reply: Data?) {
        let waiter = state.withLock { s -> CheckedContinuation<Data?, Never>? in
            switch s {
            case .empty:
                s = .resolved(reply)
                return nil
            case .awaited(let c):
                s = .resolved(reply)
                return c
            case .resolved:
                return nil
            }
        }
        waiter?.resume(returning: reply)
    }

    /// Waits for the first `resolve` (one waiter).
    func value() async -> Data? {
        await withCheckedContinuation { (c: CheckedContinuation<Data?, Never>) in
            let ready = state.withLock { s -> Data?? in
                switch s {
                case .empty:
                    s = .awaited(c)
                    return nil
                case .resolved(let v): return .some(v)
                case .awaited: preconditionFailure("PendingReply has one waiter")
                }
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

/// One frame of the control protocol: a request line (without its newline), or notice that a line went over the
/// limit (the decoder then drops bytes up to the next newline).
enum ControlFrame: Sendable {
    case line(ByteBuffer)
    case tooLarge
}

/// Splits the byte stream at newlines. A line longer than `maxLineBytes` is reported once as `.tooLarge`, as soon as
/// the limit is passed, and discarded up to its newline; the connection then goes on with the next line.
struct ControlLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ControlFrame
    let maxLineBytes: Int
    private var discarding = false
    /// Bytes already searched for a newline in the current buffer.
    private var scanned = 0

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if let nl = view[(view.startIndex + scanned)...].firstIndex(of: 0x0A) {
            let length = nl - view.startIndex
            scanned = 0
            if discarding {
                discarding = false
                buffer.moveReaderIndex(forwardBy: length + 1)
                return .continue
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if length > maxLineBytes {
                context.fireChannelRead(wrapInboundOut(.tooLarge))
                return .continue
            }
            // Trailing CR, spaces and tabs go; a blank line is no request (and gets no reply).
            while line.readableBytes > 0, let last = line.getInteger(at: line.writerIndex - 1, as: UInt8.self),
                last == 0x0D || last == 0x20 || last == 0x09
            {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            if line.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.line(line))) }
            return .continue
        }
        scanned = view.count
        if buffer.readableBytes > maxLineBytes {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            scanned = 0
            if !discarding {
                discarding = true
                context.fireChannelRead(wrapInboundOut(.tooLarge))
            }
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        // A last line without its newline is not a request.
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}

/// Closes a connection that has sent no request for `timeout` while none of its requests is being answered: a
/// request waiting for the engine (a `flatten` that takes a minute) keeps its connection however long the answer
/// takes. Every frame gets exactly one reply (blank lines are not frames), so requests in flight are frames read
/// minus replies written.
final class ControlIdleTimeout: ChannelDuplexHandler {
    typealias InboundIn = ControlFrame
    typealias InboundOut = ControlFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var inFlight = 0
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inFlight += 1
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        inFlight = max(0, inFlight - 1)
        if inFlight == 0 { arm(context) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
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

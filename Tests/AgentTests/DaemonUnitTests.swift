import ControlProtocol
import Engine
import Foundation
import Logging
import Synchronization
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

@Suite(.tags(.unit)) struct SupervisorTests {
    @Test func fullPathWithManualActivation() throws {
        var s = Supervisor(requireManualActivation: true)
        #expect(s.state == .starting)
        #expect(s.beginRecovery()?.to == .recovering)
        #expect(s.recovered(previous: nil, previousReason: nil, warm: false)?.to == .warming)
        #expect(throws: SupervisorRefusal.self) { try s.activate() }
        #expect(s.windowWarm()?.to == .observing)
        #expect(try s.activate()?.to == .active)
        #expect(s.activated)
        #expect(try s.pause()?.to == .paused)
        #expect(try s.resume(blocker: nil)?.to == .active)
        #expect(s.beginFlatten(.operatorFlatten)?.to == .flattening)
        #expect(s.beginFlatten(.killSwitch) == nil, "a second flatten joins the first")
        #expect(s.flat()?.to == .halted)
        #expect(s.reason == "operator_flatten")
        #expect(throws: SupervisorRefusal.self) { try s.resume(blocker: "the kill switch is active") }
        #expect(try s.resume(blocker: nil)?.to == .active)
    }

    /// The cause of a halt is typed, and the stored reason it begins carries it across a restart.
    @Test func theHaltCauseSurvivesARestartInItsReason() {
        var s = Supervisor(requireManualActivation: true)
        _ = s.beginRecovery()
        #expect(s.haltCause == nil)
        #expect(
            s.halt(.positionMismatch, "agent and exchange positions differ")?.reason
                == "position_mismatch: agent and exchange positions differ")
        #expect(s.haltCause == .positionMismatch)
        var restarted = Supervisor(requireManualActivation: true)
        _ = restarted.beginRecovery()
        _ = restarted.recovered(previous: .halted, previousReason: s.reason, warm: true)
        #expect(restarted.haltCause == .positionMismatch && restarted.reason == s.reason)
        #expect(
            HaltCause(reason: "kill_switch") == .killSwitch
                && HaltCause(reason: "operator_flatten_direct") == .operatorFlattenDirect)
        #expect(HaltCause(reason: "paused by the operator") == nil)
    }

    @Test func withoutManualActivationWarmGoesActive() {
        var s = Supervisor(requireManualActivation: false)
        _ = s.beginRecovery()
        #expect(s.recovered(previous: nil, previousReason: nil, warm: true)?.to == .active)
    }

    @Test func haltAndPauseSurviveARestartAndAStopKeepsTheStateBeforeIt() {
        var s = Supervisor(requireManualActivation: true)
        _ = s.beginRecovery()
        #expect(s.recovered(previous: .halted, previousReason: "kill_switch", warm: true)?.to == .halted)
        #expect(s.reason == "kill_switch")
        _ = s.stop("SIGTERM")
        #expect(s.state == .stopping)
        #expect(s.persistentState.state == .halted && s.persistentState.reason == "kill_switch")

        var p = Supervisor(requireManualActivation: true, activated: true)
        _ = p.beginRecovery()
        #expect(p.recovered(previous: .paused, previousReason: "paused by the operator", warm: true)?.to == .paused)
        var a = Supervisor(requireManualActivation: true, activated: true)
        _ = a.beginRecovery()
        #expect(
            a.recovered(previous: .active, previousReason: nil, warm: true)?.to == .active,
            "an operator's activation survives")
        var f = Supervisor(requireManualActivation: true)
        _ = f.beginRecovery()
        #expect(f.recovered(previous: .flattening, previousReason: "operator_flatten", warm: false)?.to == .flattening)
    }

    @Test func reloadClassifiesChanges() throws {
        let dir = packageRoot.appendingPathComponent("config/environments").path
        let base = try ConfigLoader.load(ConfigSelection(environment: "sim", directory: dir))
        let changed = try ConfigLoader.load(
            ConfigSelection(
                environment: "sim", directory: dir,
                overrides: [
                    "risk.cooldown_minutes=5", "value_area.va_fraction=0.68", "agent.mode=paper",
                    "exchange.rest_url=http://x",
                ]))
        let (restart, flat, live) = AgentConfiguration.classify(from: base, to: changed)
        #expect(Set(restart) == ["agent.mode", "exchange.rest_url"])
        #expect(flat == ["value_area.va_fraction"])
        #expect(live == ["risk.cooldown_minutes"])
    }
}

@Suite(.tags(.unit)) struct AgentStoreTests {
    @Test func rawDataIsPurgedInBatchesAndReplayedInTimeOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString.prefix(8))")
            .path
        let store = try AgentStore(directory: dir, instrument: .btcusdt)
        let trades = (0..<3_000).map { TradeEvent(ts: Int64($0) * 10, price: 500_000, size: 1) }
        let quotes = (0..<3_000).map {
            QuoteEvent(ts: Int64($0) * 10, bidPrice: 499_999, bidSize: 1, askPrice: 500_000, askSize: 1)
        }
        try store.writeRaw(trades: trades, quotes: quotes)
        var replayed: [MarketEvent] = []
        let counts = try store.replayRaw(from: 29_000) { replayed.append($0) }
        #expect(counts.trades == 100 && counts.quotes == 100)
        if case .quote(let q)? = replayed.first {
            #expect(q.ts == 29_000)
        } else {
            Issue.record("a quote comes first at equal times")
        }
        #expect(zip(replayed, replayed.dropFirst()).allSatisfy { $0.ts <= $1.ts })
        let deleted = try store.purgeRaw(before: 20_000, batch: 250)
        #expect(deleted == 4_000)
        #expect(try store.count("trades") == 1_000 && store.count("quotes") == 1_000)
        #expect(try store.lastRawTs() == 29_990)
    }
}

/// One state-directory rule for the agent and the offline tools (backfill, flatten-direct).
@Suite(.tags(.unit)) struct StateDirectoryTests {
    @Test func explicitThenConfiguredThenSystemdThenThePackagedDatabaseOfThisEnvironment() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("pkg-\(UUID().uuidString.prefix(8))")
            .path
        let resolved = try ConfigLoader.load(
            ConfigSelection(
                environment: "paper", directory: packageRoot.appendingPathComponent("config/environments").path))
        func dir(_ env: String, explicit: String? = nil, process: [String: String] = [:], packaged: Bool = true)
            -> String
        {
            StateLock.stateDirectory(
                explicit: explicit, configured: AgentConfiguration(resolved, environment: env).agent.stateDirectory,
                environment: env, processEnvironment: process,
                lookForPackaged: packaged, packagedRoot: root)
        }
        #expect(dir("paper", explicit: "/x") == "/x")
        #expect(dir("paper", process: ["STATE_DIRECTORY": "/var/lib/a:/var/lib/b"]) == "/var/lib/a")
        #expect(dir("paper") == "state/paper", "nothing packaged yet")
        // The default unit's directory holds paper's database: paper finds it, live does not.
        let main = try AgentStore(directory: root + "/main", instrument: .btcusdt)
        try main.setMeta("environment", "paper")
        #expect(dir("paper") == root + "/main")
        #expect(dir("live") == "state/live")
        #expect(dir("paper", packaged: false) == "state/paper", "the agent itself never looks there")
        // A templated unit's own directory comes first.
        _ = try AgentStore(directory: root + "/paper", instrument: .btcusdt)
        #expect(dir("paper") == root + "/paper")
    }
}

@Suite(.tags(.unit)) struct LogSinkTests {
    @Test func jsonLinesCarryContextEventAndDottedMetadataAndNeverASecret() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let sink = LogSink(output: .jsonLines, fd: fds[1], environment: [:])
        sink.setContext([("env", "paper"), ("mode", "paper")])
        sink.setState("active")
        sink.redact(["s3cr3t-value"])
        let logger = Logger(label: "t") { AgentLogHandler(label: $0, sink: sink) }
        logger.notice(
            "order filled with key s3cr3t-value",
            metadata: ["event": "order.filled", "order": ["link_id": "at-e-1-1"], "qty": "0.5"])
        close(fds[1])
        let data = FileHandle(fileDescriptor: fds[0]).readDataToEndOfFile()
        let line = String(decoding: data, as: UTF8.self)
        #expect(!line.contains("s3cr3t-value"))
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        #expect(
            obj["event"] == "order.filled" && obj["env"] == "paper" && obj["mode"] == "paper"
                && obj["state"] == "active")
        #expect(obj["order.link_id"] == "at-e-1-1" && obj["qty"] == "0.5" && obj["level"] == "notice")
        #expect(obj["message"] == "order filled with key [redacted]")
        #expect(obj["ts"]?.hasSuffix("Z") == true)
    }

    /// `agent.log_level`: one level for every logger, changed at once (a reload sets it on the sink).
    @Test func theSinksLevelFiltersEveryLoggerAndChangesAtOnce() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let sink = LogSink(output: .jsonLines, fd: fds[1], environment: [:])
        let logger = Logger(label: "t") { AgentLogHandler(label: $0, sink: sink) }
        #expect(LogSink.level(named: "debug") == .debug && LogSink.level(named: "warning") == .warning)
        logger.debug("hidden at info", metadata: ["event": "a"])
        sink.level = LogSink.level(named: "warning")
        logger.info("hidden at warning", metadata: ["event": "b"])
        logger.warning("shown at warning", metadata: ["event": "c"])
        sink.level = LogSink.level(named: "debug")
        logger.debug("shown at debug", metadata: ["event": "d"])
        close(fds[1])
        let lines = String(decoding: FileHandle(fileDescriptor: fds[0]).readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n")
        #expect(
            lines.count == 2 && lines[0].contains("\"event\":\"c\"") && lines[1].contains("\"event\":\"d\""), "\(lines)"
        )
    }

    @Test func journalDetectionNeedsStdoutToBeTheNamedStream() {
        #expect(!LogSink.stdoutIsJournal([:]))
        #expect(!LogSink.stdoutIsJournal(["JOURNAL_STREAM": "1:2"]))
        #expect(!LogSink.stdoutIsJournal(["JOURNAL_STREAM": "garbage"]))
    }
}

/// Set once, read from any thread.
final class StoppedFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}

/// A control server with no engine behind it except a stub that refuses every changing command.
final class ServerFixture: Sendable {
    let dir: URL
    let server: ControlServer
    let board: StatusBoard
    let queue: EventQueue
    private let stopped = StoppedFlag()
    private let serving: Task<Void, any Error>

    /// `idleTimeoutMs` is the server's; the stub engine answers after `engineDelayMs`.
    static func make(publish: Bool = true, idleTimeoutMs: Int64 = 30_000, engineDelayMs: Int = 0) async throws
        -> ServerFixture
    {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-\(UUID().uuidString.prefix(8))")
        let board = StatusBoard()
        let queue = EventQueue()
        let store = try AgentStore(directory: dir.path, instrument: .btcusdt)
        let server = ControlServer(
            path: dir.appendingPathComponent("c.sock").path, board: board, store: store, queue: queue,
            logger: Logger(label: "test"),
            versionInfo: VersionReport(version: "t", environment: "test", mode: "paper", pid: 1), maxLineBytes: 4_096,
            idleTimeoutMs: idleTimeoutMs)
        if publish {
            board.publish(
                PublishedState(status: sampleStatus(), positions: [], orders: [], valueArea: nil), statusLine: "x")
        }
        try await server.start()
        return ServerFixture(dir: dir, server: server, board: board, queue: queue, engineDelayMs: engineDelayMs)
    }

    private init(dir: URL, server: ControlServer, board: StatusBoard, queue: EventQueue, engineDelayMs: Int) {
        self.dir = dir
        self.server = server
        self.board = board
        self.queue = queue
        serving = server.serveInBackground()
        let stopped = self.stopped
        let t = Thread {
            while !stopped.isSet {
                for input in queue.takeAll(timeoutMs: 50) {
                    if case .command(let call) = input {
                        if engineDelayMs > 0 { usleep(UInt32(engineDelayMs) * 1000) }
                        call.reply(
                            encodeReply(
                                ControlReply<NoResult>(
                                    id: call.request.id, error: ControlFailure(ControlFailure.refused, "stub"))))
                    }
                }
            }
        }
        t.start()
    }

    func stop() {
        stopped.set()
        server.stop()
    }
}

func sampleStatus() -> StatusReport {
    let pnl = PnLReport(
        equity: 1, cash: 1, unrealizedPnL: 0, todayPnL: 0, dayStartEquity: 1, killSwitchLoss: -1, killSwitchDistance: 1,
        killSwitchActive: false, realizedToday: 0, dailyLossLimit: -1, dailyLossDistance: 1,
        dailyLossLimitReached: false,
        feesPaid: 0, fundingPaid: 0, roundTrips: 0, winningRoundTrips: 0, netPnLAllTime: 0)
    let health = HealthReport(
        status: "healthy", reasons: [], marketDataAgeMs: 1, publicStream: "ready", lastVenueSuccessAgoMs: nil,
        databaseWritable: true, loopLagMs: 0, clockOffsetMs: 0, reconnects: 0, gaps: 0, watchdog: "none")
    return StatusReport(
        environment: "test", mode: "paper", state: "active", stateReason: "r", stateSince: "t", activated: true,
        requireManualActivation: true, marketTime: nil, position: nil, workingOrders: 0, pnl: pnl, heat: 0,
        valueArea: nil,
        lastSignal: nil, lastTrade: nil, health: health, uptimeSeconds: 1, version: "t", pid: 1)
}

/// A raw client: write bytes, read reply lines.
final class RawClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard var addr = unixSocketAddress(path) else { throw CommandError("socket path too long: \(path)") }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard r == 0 else { throw CommandError("connect \(path)") }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func write(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    func write(_ s: String) { write(Array(s.utf8)) }

    func readLine() -> [String: Any]? {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}

func errorCode(_ reply: [String: Any]?) -> String? { (reply?["error"] as? [String: Any])?["code"] as? String }

@Suite(.tags(.integration)) struct ControlServerTests {
    @Test func badRequestsGetErrorRepliesAndTheConnectionStaysUsable() async throws {
        let f = try await ServerFixture.make()
        defer { f.stop() }
        let c = try RawClient(f.server.path)
        c.write("not json\n")
        #expect(errorCode(c.readLine()) == "bad_request")
        c.write(#"{"id":7,"cmd":"nope"}"# + "\n")
        let unknown = c.readLine()
        #expect(errorCode(unknown) == "unknown_command" && unknown?["id"] as? Int == 7)
        c.write([0x7B, 0xFF, 0xFE, 0x7D, 0x0A])
        #expect(errorCode(c.readLine()) == "bad_request")
        c.write(#"{"id":1,"cmd":"signals","args":{"last":-3}}"# + "\n")
        #expect(errorCode(c.readLine()) == "bad_arguments")
        c.write(String(repeating: "x", count: 10_000) + "\n")
        #expect(errorCode(c.readLine()) == "request_too_large")
        // A line in two writes, then a good request on the same connection.
        c.write(#"{"id":2,"cm"#)
        c.write(#"d":"status"}"# + "\n")
        let ok = c.readLine()
        #expect(ok?["ok"] as? Bool == true && ok?["id"] as? Int == 2)
        c.write(#"{"id":3,"cmd":"pause"}"# + "\n")
        #expect(errorCode(c.readLine()) == "refused", "changing commands go to the engine")
        c.write(#"{"id":4,"cmd":"kill-switch","args":{"action":"explode"}}"# + "\n")
        #expect(errorCode(c.readLine()) == "bad_arguments")
    }

    @Test func readsBeforeTheFirstPublishAreRefusedNotHung() async throws {
        let f = try await ServerFixture.make(publish: false)
        defer { f.stop() }
        let c = try RawClient(f.server.path)
        c.write(#"{"id":1,"cmd":"status"}"# + "\n")
        #expect(errorCode(c.readLine()) == "refused")
        c.write(#"{"id":2,"cmd":"version"}"# + "\n")
        #expect(c.readLine()?["ok"] as? Bool == true)
    }

    @Test func socketIsGroupOnlyAndALiveSocketIsNotReplaced() async throws {
        let f = try await ServerFixture.make()
        defer { f.stop() }
        let mode = try FileManager.default.attributesOfItem(atPath: f.server.path)[.posixPermissions] as? Int
        #expect(mode == 0o660)
        let second = ControlServer(
            path: f.server.path, board: f.board, store: try AgentStore(directory: f.dir.path, instrument: .btcusdt),
            queue: f.queue, logger: Logger(label: "t"),
            versionInfo: VersionReport(version: "t", environment: "t", mode: "t", pid: 1))
        await #expect(throws: CommandError.self) { try await second.start() }
        #expect(ControlServer.peerAllowed(uid: 0, gid: 12_345))
        #expect(ControlServer.peerAllowed(uid: getuid(), gid: 12_345))
        #expect(!ControlServer.peerAllowed(uid: 54_321, gid: 54_321) || getgid() == 54_321)
    }

    /// The socket file takes the unbound socket's mode (less the umask) at bind, so the server never changes the
    /// process's umask: that would reach files and directories other threads create meanwhile (a browser started by
    /// a test got a profile it could not enter).
    @Test func theSocketGetsItsModeWithoutTouchingTheUmask() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sock-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s").path
        let fd = try ControlServer.boundSocket(path, mode: 0o600)
        defer { close(fd) }
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the mode given, not 0666 less the umask (no umask masks the owner's bits)")
        #expect(throws: CommandError.self) { _ = try ControlServer.boundSocket(path, mode: 0o600) }
    }

    @Test func staleSocketFileIsReplacedButOtherFilesAreNot() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try AgentStore(directory: dir.path, instrument: .btcusdt)
        let plain = dir.appendingPathComponent("plain").path
        FileManager.default.createFile(atPath: plain, contents: Data("keep".utf8))
        let onFile = ControlServer(
            path: plain, board: StatusBoard(), store: store, queue: EventQueue(), logger: Logger(label: "t"),
            versionInfo: VersionReport(version: "t", environment: "t", mode: "t", pid: 1))
        await #expect(throws: CommandError.self) { try await onFile.start() }
        #expect(FileManager.default.contents(atPath: plain) == Data("keep".utf8))
        // A socket file nobody listens on (a dead agent's).
        let path = dir.appendingPathComponent("dead.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = try ControlServer.address(path)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        let server = ControlServer(
            path: path, board: StatusBoard(), store: store, queue: EventQueue(), logger: Logger(label: "t"),
            versionInfo: VersionReport(version: "t", environment: "t", mode: "t", pid: 1))
        try await server.start()
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: path), "the server removes the socket file it bound")
    }

    /// The idle timeout closes a connection that asks nothing, never one whose request the engine is still
    /// answering (a flatten may take a minute): here the engine takes three idle timeouts to answer.
    @Test func theIdleTimeoutClosesQuietConnectionsButNeverOneAwaitingTheEngine() async throws {
        let f = try await ServerFixture.make(idleTimeoutMs: 200, engineDelayMs: 600)
        defer { f.stop() }
        let waiting = try RawClient(f.server.path)
        waiting.write(#"{"id":1,"cmd":"pause"}"# + "\n")
        #expect(errorCode(waiting.readLine()) == "refused", "the engine's answer arrives on the open connection")
        waiting.write(#"{"id":2,"cmd":"status"}"# + "\n")
        #expect(waiting.readLine()?["ok"] as? Bool == true)
        let quiet = try RawClient(f.server.path)
        quiet.write("\r\n  \n")  // blank lines are no requests
        #expect(quiet.readLine() == nil, "closed after the idle timeout, with no reply to blank lines")
    }

    /// 20,000 random and mutated requests over concurrent connections (the agent-process test sends 100,000):
    /// garbage, huge and partial lines, invalid UTF-8; every complete line gets one reply and the server serves a
    /// clean request afterwards.
    @Test func fuzzedRequestsNeverStallTheServer() async throws {
        let f = try await ServerFixture.make()
        defer { f.stop() }
        let total = 20_000
        let answered = fuzz(
            socket: f.server.path, total: total, workers: 4, seed: 1, maxLineBytes: f.server.maxLineBytes)
        #expect(answered >= total - 200, "every non-empty line is answered: \(answered)")
        let c = try RawClient(f.server.path)
        c.write(#"{"id":1,"cmd":"status"}"# + "\n")
        #expect(c.readLine()?["ok"] as? Bool == true)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Sends `total` random and mutated request lines over `workers` connections (valid requests, mutated ones,
/// garbage, huge lines, invalid UTF-8, odd arguments) and returns how many replies came back.
func fuzz(socket path: String, total: Int, workers: Int, seed: UInt64, maxLineBytes: Int = 64 * 1024) -> Int {
    let valid = [
        #"{"id":1,"cmd":"status"}"#, #"{"id":2,"cmd":"health","args":{}}"#,
        #"{"id":3,"cmd":"signals","args":{"last":5}}"#,
        #"{"id":5,"cmd":"version"}"#, #"{"cmd":"positions"}"#, #"{"id":6,"cmd":"alerts","args":{"last":2}}"#,
    ]
    let group = DispatchGroup()
    let replies = Counter()
    for w in 0..<workers {
        group.enter()
        Thread {
            defer { group.leave() }
            var rng = SplitMix(seed: seed &+ UInt64(w + 1))
            guard let c = try? RawClient(path) else { return }
            for _ in 0..<(total / workers) {
                var bytes: [UInt8]
                switch rng.next() % 6 {
                case 0: bytes = Array(valid[Int(rng.next() % UInt64(valid.count))].utf8)
                case 1:
                    bytes = Array(valid[Int(rng.next() % UInt64(valid.count))].utf8)
                    for _ in 0..<(1 + rng.next() % 4) {
                        bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                    }
                case 2: bytes = (0..<(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                case 3:
                    bytes = Array(
                        repeating: UInt8(ascii: "{"), count: Int(rng.next() % UInt64(maxLineBytes + maxLineBytes / 2)))
                case 4: bytes = [0xC3, 0x28, 0xA0, 0xA1] + Array(#"{"cmd":"status"}"#.utf8)
                default: bytes = Array(#"{"id":9,"cmd":"status","args":{"last":"x"},"extra":[1,2,{"a":null}]}"#.utf8)
                }
                // One request per line: newlines inside the body would split it.
                bytes = bytes.map { $0 == 0x0A ? 0x20 : $0 }
                // A mutation may turn a read into a changing command; keep the fuzz to reads and garbage.
                if let text = String(bytes: bytes, encoding: .utf8),
                    ["activate", "pause", "resume", "flatten", "reload", "kill-switch"].contains(where: {
                        text.contains($0)
                    })
                {
                    bytes = Array(#"{"id":1,"cmd":"status"}"#.utf8)
                }
                c.write(bytes + [0x0A])
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                if c.readLine() != nil { replies.increment() } else { return }
            }
        }.start()
    }
    group.wait()
    return replies.value
}

@Suite(.tags(.unit)) struct SignalFeedTests {
    static func row(_ minute: Int64, _ action: String, _ reason: String, _ detected: String = "") throws -> SignalRow {
        let json =
            #"{"ts":\#(minute * 60_000),"action":"\#(action)","reason":"\#(reason)","detected":"\#(detected)","above":"","below":""}"#
        return try JSONDecoder().decode(SignalRow.self, from: Data(json.utf8))
    }

    /// The dashboard's signal feed: entries, exits and vetoes each on a line; quiet minutes folded, newest first.
    @Test func quietMinutesFoldAndEntriesExitsAndVetoesStand() throws {
        let rows = try [
            Self.row(20, "HOLD", "no_signal"), Self.row(19, "HOLD", "no_signal"), Self.row(18, "EXIT", "close_inside"),
            Self.row(17, "HOLD", "no_signal"), Self.row(16, "HOLD", "no_signal"), Self.row(15, "HOLD", "no_signal"),
            Self.row(14, "HOLD", "ambiguous_needs_both", "breakin_long"), Self.row(13, "HOLD", "no_signal"),
            Self.row(12, "ENTER_LONG", "breakin_long"), Self.row(11, "HOLD", "cooldown"),
            Self.row(10, "HOLD", "cooldown"),
        ]
        let lines = DashboardFeed.fold(rows, lines: 15)
        #expect(lines.map(\.kind) == ["hold", "exit", "hold", "veto", "hold", "entry", "hold"])
        #expect(lines.map(\.count) == [2, 1, 3, 1, 1, 1, 2])
        #expect(lines[2].minute == isoTime(15 * 60_000) && lines[2].until == isoTime(17 * 60_000))
        #expect(lines[3].reason == "ambiguous_needs_both" && lines[3].detected == ["breakin_long"])
        #expect(lines[6].reason == "cooldown", "a HOLD of another reason is its own line")
        #expect(DashboardFeed.fold(rows, lines: 3).count == 3)
    }
}

@Suite(.tags(.unit)) struct MemoryBudgetTests {
    @Test func sizesParseInPowersOf1024() {
        #expect(MemoryBudget.parse("512M") == 512 << 20)
        #expect(MemoryBudget.parse("8G") == 8 << 30 && MemoryBudget.parse("8GB") == 8 << 30)
        #expect(MemoryBudget.parse("8gib") == 8 << 30 && MemoryBudget.parse("1.5G") == 3 << 29)
        #expect(MemoryBudget.parse("65536") == 65_536 && MemoryBudget.parse("2T") == 2 << 40)
        for bad in ["", "G", "-1G", "0", "lots", "1.5X", "nanG"] { #expect(MemoryBudget.parse(bad) == nil, "\(bad)") }
        #expect(MemoryBudget.available() > 0 && MemoryBudget.standard == MemoryBudget.available() / 2)
        #expect(MemoryBudget.text(3 << 29) == "1.5 GB" && MemoryBudget.text(640 << 20) == "640 MB")
    }
}

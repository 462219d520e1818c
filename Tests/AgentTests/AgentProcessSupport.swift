import ControlProtocol
import Foundation
import Testing

/// The built `atctl` beside the test bundle (or in .build/debug).
func atctlBinary() -> URL {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
        "atctl")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    return packageRoot.appendingPathComponent(".build/debug/atctl")
}

/// Runs atctl to completion.
func atctl(_ arguments: [String], stdin: String? = nil) throws -> Run {
    let process = Process()
    process.executableURL = atctlBinary()
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
    var env = ProcessInfo.processInfo.environment
    env["NO_COLOR"] = "1"
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    if let stdin {
        let input = Pipe()
        process.standardInput = input
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try? input.fileHandleForWriting.close()
    }
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs a program to completion from the package root, capturing both outputs (read before waiting, so a full
/// pipe never blocks the child). `environment` adds to (or, with "", blanks) the test's own.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Run {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.currentDirectoryURL = packageRoot
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Run(
        status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
        stderr: String(decoding: e, as: UTF8.self))
}

/// Settings that make the sim environment quick to test: a 30-minute window warm at once, a market at 60x.
let quickSim = [
    "--set", "sim.warm_minutes=40", "--set", "value_area.rolling_window_minutes=30", "--set",
    "value_area.warmup_minutes=30",
    "--set", "value_area.min_va_bins=5", "--set", "sim.speed=60",
    // The window comes from the simulator's klines at start: trade on it at once (WarmStartTests pins the veto).
    "--set", "agent.max_approximate_va_share=1",
    // Breakouts enter on their trigger bar (retest mode off), so that positions open within the tests' waits; entries
    // stay limits with the market fallback (the default). The kernel's retest rule is pinned by BreakoutTests.
    "--set", "signal.enable_retest_mode=false",
]

/// An `auction-agent run` process in a temporary directory, driven through its control socket with atctl.
final class AgentProcess: @unchecked Sendable {
    let directory: URL
    let socket: String
    let stateDir: String
    let logPath: String
    let process = Process()
    var extraEnvironment: [String: String]

    init(directory: URL? = nil, environment: [String: String] = [:]) throws {
        let dir =
            directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.directory = dir
        socket = dir.appendingPathComponent("control.sock").path
        stateDir = dir.appendingPathComponent("state").path
        logPath = dir.appendingPathComponent("agent-\(UUID().uuidString.prefix(4)).log").path
        extraEnvironment = environment
    }

    /// Starts `auction-agent run --env ENV` with the socket and state in the temporary directory.
    func start(env: String? = "sim", _ extra: [String] = []) throws {
        process.executableURL = agentBinary()
        // The HTTP server on a port the system chooses (tests run side by side); `httpPort` reads it from the log.
        process.arguments =
            ["run"] + (env.map { ["--env", $0] } ?? []) + [
                "--socket", socket, "--state-dir", stateDir,
                "--set", "agent.http_listen=127.0.0.1:0",
            ] + extra
        process.currentDirectoryURL = packageRoot
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "AUCTION_CONFIG_DIR")
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.removeValue(forKey: "JOURNAL_STREAM")
        for (k, v) in extraEnvironment { environment[k] = v }
        process.environment = environment
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// Runs atctl against this agent.
    func ctl(_ arguments: [String], stdin: String? = nil) throws -> Run {
        try atctl(["--socket", socket] + arguments, stdin: stdin)
    }

    /// `atctl --json CMD`, decoded.
    func json<R: Codable & Sendable>(_ cmd: [String], as: R.Type) throws -> R? {
        let run = try ctl(cmd + ["--json"])
        guard run.status == 0 else { return nil }
        return try JSONDecoder().decode(ControlReply<R>.self, from: Data(run.stdout.utf8)).result
    }

    func status() -> StatusReport? { try? json(["status"], as: StatusReport.self) }

    /// Polls until `condition` holds (every 200 ms, up to `seconds`); false on timeout or when the agent exits.
    @discardableResult
    func wait(seconds: Double = 90, _ condition: () -> Bool) -> Bool {
        poll(seconds: seconds, every: 0.2, giveUp: { !process.isRunning }, condition)
    }

    func waitForState(_ state: String, seconds: Double = 90) -> Bool {
        wait(seconds: seconds) { status()?.state == state }
    }

    /// The HTTP server's port, from the agent's `http.listening` log line (nil until it listens).
    var httpPort: Int? { events("http.listening").last.flatMap { ($0["port"] as? String).flatMap { Int($0) } } }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Log lines with this event.
    func events(_ name: String) -> [[String: Any]] {
        log.split(separator: "\n").compactMap { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                obj["event"] as? String == name
            else { return nil }
            return obj
        }
    }

    /// SIGTERM, then the exit status.
    func terminate() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// kill -9.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A loopback HTTP endpoint that records request bodies (the alert webhook's receiver).
final class HookServer: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        listen(fd, 16)
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = UInt16(bigEndian: bound.sin_port)
        self.fd = fd
        let listener = fd
        Thread { [self] in
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                var data: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 8192)
                while true {
                    let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    data += buf[0..<n]
                    let text = String(decoding: data, as: UTF8.self)
                    if let end = text.range(of: "\r\n\r\n") {
                        let head = text[..<end.lowerBound].lowercased()
                        let length =
                            head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
                            ?? 0
                        let body = text[end.upperBound...]
                        if body.utf8.count >= length {
                            lock.withLock { received.append(String(body)) }
                            break
                        }
                    }
                }
                let reply = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = reply.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(c)
            }
        }.start()
    }

    var bodies: [String] { lock.withLock { received } }

    func wait(seconds: Double = 60, _ condition: ([String]) -> Bool) -> Bool {
        poll(seconds: seconds) { condition(bodies) }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// The one polling loop of the end-to-end tests: checks `condition` every `interval` seconds until it holds, `seconds`
/// pass or `giveUp` says there is no point (the process under test exited); then answers whether it holds. The
/// limits are generous on purpose: they bound a failure, they do not measure speed (the suite runs in parallel on
/// two cores).
func poll(seconds: Double, every interval: Double = 0.1, giveUp: () -> Bool = { false }, _ condition: () -> Bool)
    -> Bool
{
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        if giveUp() { break }
        usleep(useconds_t(interval * 1_000_000))
    }
    return condition()
}

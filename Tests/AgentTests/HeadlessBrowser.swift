import Exchange
import ExchangeStreams
import Foundation
import Logging
import WSClient

/// Debian's chromium, headless, driven over the DevTools protocol: open a page, evaluate JavaScript in it, take a
/// screenshot. Each evaluation is one short WebSocket connection to the page's target.
final class HeadlessBrowser: @unchecked Sendable {
    private(set) var process = Process()
    let profile: URL
    let devtoolsPort: Int
    private(set) var pageSocket = ""
    /// The DevTools connections run on a thread of their own: other tests may block every thread of the shared pool.
    private let executor = DedicatedExecutor(label: "cdp")

    static var executable: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    init() throws {
        guard let exe = Self.executable else {
            throw BrowserError("chromium is not installed: run `bash scripts/setup --tests` (Debian package chromium)")
        }
        profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chromium-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", "--window-size=1400,1500", "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir=\(profile.path)", "about:blank",
        ]
        // Chromium writes the port it chose to DevToolsActivePort in the profile. On a loaded 2-core machine a cold
        // start has exited before opening it (seen twice in CI, never alone): up to three launches, each bounded.
        let portFile = profile.appendingPathComponent("DevToolsActivePort")
        let log = profile.appendingPathComponent("chromium.log")
        var port: Int?
        var failures: [String] = []
        for _ in 1...3 where port == nil {
            // A launch that died may leave its singleton lock in the profile.
            for name in ["SingletonLock", "SingletonSocket", "SingletonCookie"] {
                try? FileManager.default.removeItem(at: profile.appendingPathComponent(name))
            }
            process = Process()
            process.executableURL = URL(fileURLWithPath: exe)
            process.arguments = arguments
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: log)
            try process.run()
            let deadline = Date(timeIntervalSinceNow: 120)
            while port == nil && Date() < deadline && process.isRunning {
                port = (try? String(contentsOf: portFile, encoding: .utf8))?.split(separator: "\n").first.flatMap {
                    Int($0)
                }
                if port == nil { usleep(100_000) }
            }
            if port == nil {
                let running = process.isRunning
                if running { process.terminate() }
                process.waitUntilExit()
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                // Chromium's own verdict (a failed CHECK) comes before the noise its dying children print.
                let fatal = text.split(separator: "\n").filter { $0.contains("FATAL") || $0.contains("Check failed") }
                let ending =
                    process.terminationReason == .uncaughtSignal
                    ? "was killed by signal \(process.terminationStatus)"
                    : "exited with status \(process.terminationStatus)"
                failures.append(
                    running
                        ? "no DevTools port within 120 s"
                        : "\(ending) before opening its DevTools port: \(fatal.prefix(3).joined(separator: " | ")) "
                            + "[log tail] \(text.suffix(400))")
            }
        }
        guard let port else {
            throw BrowserError("chromium did not start: \(failures.joined(separator: "; "))")
        }
        devtoolsPort = port
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: profile)
    }

    /// Opens `url` in a new tab, which later evaluations use.
    func open(_ url: String) throws {
        let transport = CurlTransport(connectTimeoutMs: 2_000, totalTimeoutMs: 10_000)
        let reply = try transport.send(
            method: "PUT", url: "http://127.0.0.1:\(devtoolsPort)/json/new?\(url)", headers: [], body: nil)
        guard reply.status == 200,
            let target = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any],
            let ws = target["webSocketDebuggerUrl"] as? String
        else {
            throw BrowserError("cannot open a tab: HTTP \(reply.status) \(String(decoding: reply.body, as: UTF8.self))")
        }
        pageSocket = ws
    }

    /// One DevTools call on the page; its `result`.
    func call(_ method: String, _ params: [String: Any]) throws -> [String: Any] {
        let request = try JSONSerialization.data(withJSONObject: ["id": 1, "method": method, "params": params])
        let box = ReplyHolder()
        let url = pageSocket
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            do {
                var configuration = WebSocketClientConfiguration()
                configuration.maxFrameSize = 32 << 20
                try await WebSocketClient.connect(url: url, configuration: configuration, logger: Logger(label: "cdp"))
                { inbound, outbound, _ in
                    try await outbound.write(.text(String(decoding: request, as: UTF8.self)))
                    for try await message in inbound.messages(maxSize: 32 << 20) {
                        guard case .text(let text) = message,
                            let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                            obj["id"] as? Int == 1
                        else { continue }
                        box.set(obj)
                        return
                    }
                }
            } catch {
                box.fail("\(error)")
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + 20) == .success else {
            throw BrowserError("\(method): no answer within 20 s")
        }
        guard let reply = box.value else { throw BrowserError("\(method): \(box.error ?? "connection closed")") }
        if let error = reply["error"] { throw BrowserError("\(method): \(error)") }
        return reply["result"] as? [String: Any] ?? [:]
    }

    /// The value of a JavaScript expression (strings, numbers and booleans come back as such).
    func evaluate(_ expression: String) throws -> Any? {
        let result = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Polls `expression` until it is true (every 250 ms, up to `seconds`).
    func waitFor(_ expression: String, seconds: Double = 30) -> Bool {
        poll(seconds: seconds, every: 0.25) { (try? evaluate(expression)) as? Bool == true }
    }

    /// A PNG of the page as it is.
    func screenshot() throws -> Data {
        let result = try call("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true])
        guard let base64 = result["data"] as? String, let png = Data(base64Encoded: base64) else {
            throw BrowserError("no screenshot data")
        }
        return png
    }
}

struct BrowserError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

private final class ReplyHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var reply: [String: Any]?
    private var failure: String?
    func set(_ r: [String: Any]) { lock.withLock { reply = r } }
    func fail(_ f: String) { lock.withLock { failure = f } }
    var value: [String: Any]? { lock.withLock { reply } }
    var error: String? { lock.withLock { failure } }
}

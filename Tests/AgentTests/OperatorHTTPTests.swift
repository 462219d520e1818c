import ControlProtocol
import Engine
import Exchange
import Foundation
import Logging
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Charts
@testable import Daemon
@testable import Research

/// The read-only HTTP server: endpoints in process against a warmed engine, then the agent as a process (a live
/// scrape through promtool, the probes), then the dashboard in a real headless browser.
@Suite(.tags(.e2e)) struct OperatorHTTPTests {
    /// A warmed paper engine (30-minute window from recorded candles and trades) and its HTTP server on a free port.
    final class Served: @unchecked Sendable {
        let engine: AgentEngine
        let http: OperatorHTTP
        let task: Task<Void, any Error>
        let port: Int
        let dir: String

        init(listen: String = "127.0.0.1:0", token: String? = nil) throws {
            dir = NSTemporaryDirectory() + "http-\(UUID().uuidString)"
            let (history, end) = WarmStartTests.recorded(
                minutes: 60, recentFrom: WarmStartTests.base + 50 * WarmStartTests.m + 30_000)
            engine = try WarmStartTests.engine(dir: dir, now: end + 10_000, history: history)
            try engine.recover(wall: .now)
            engine.board.beat(.now)
            http = try OperatorHTTP(
                address: ListenAddress(listen)!, token: token, board: engine.board, store: engine.store,
                metrics: engine.metrics, instrument: engine.settings.instrument,
                thresholds: DashboardThresholds(strategy: engine.settings.strategy), logger: .init(label: "http-test"))
            task = http.serveInBackground()
            guard let p = http.waitUntilListening(ms: 10_000) else {
                throw BrowserError("the HTTP server did not listen")
            }
            port = p
        }

        deinit {
            task.cancel()
            try? FileManager.default.removeItem(atPath: dir)
        }

        func get(_ path: String, headers: [String] = []) throws -> HTTPReply {
            try CurlTransport(connectTimeoutMs: 2_000, totalTimeoutMs: 10_000).send(
                method: "GET", url: "http://127.0.0.1:\(port)\(path)",
                headers: headers, body: nil)
        }
    }

    static func text(_ r: HTTPReply) -> String { String(decoding: r.body, as: UTF8.self) }

    @Test func healthMetricsAndThePageOnLoopbackWithoutAToken() throws {
        let s = try Served()
        let health = try s.get("/healthz")
        #expect(health.status == 200 && Self.text(health) == "ok\n")

        let ready = try s.get("/readyz")
        let verdict = try JSONSerialization.jsonObject(with: Data(ready.body)) as? [String: Any]
        // Warm and healthy apart from the public stream, which a test engine never connects: 503 with that reason.
        #expect(ready.status == 503)
        #expect(verdict?["ready"] as? Bool == false)
        #expect(
            (verdict?["reasons"] as? [String])?.contains { $0.contains("public stream") } == true, "\(Self.text(ready))"
        )
        #expect(verdict?["state"] as? String == "active")

        let metrics = Self.text(try s.get("/metrics"))
        #expect(
            metrics.contains(#"auction_agent_state{env="warm-test",mode="paper",state="active"} 1.0"#),
            "\(metrics.prefix(2_000))")
        #expect(metrics.contains(#"auction_agent_state{env="warm-test",mode="paper",state="halted"} 0.0"#))
        #expect(metrics.contains("# HELP auction_agent_equity_usdt "))
        #expect(metrics.contains(#"auction_agent_value_area_price{env="warm-test",mode="paper",level="poc"}"#))
        #expect(metrics.contains(#"auction_agent_ready{env="warm-test",mode="paper"} 0.0"#))
        // Every family has its help text and type (what promtool asks for).
        let families = Set(
            metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
                String($0.prefix { $0 != "{" && $0 != " " })
            })
        for f in families {
            let family = f.replacingOccurrences(of: "_bucket", with: "").replacingOccurrences(of: "_sum", with: "")
                .replacingOccurrences(of: "_count", with: "")
            #expect(metrics.contains("# HELP \(family) ") && metrics.contains("# TYPE \(family) "), "\(family)")
        }

        let page = try s.get("/")
        #expect(page.status == 200)
        let html = Self.text(page)
        #expect(html.contains(#"<script type="module" src="dashboard.js">"#))
        // The page loads nothing from another host: every src is the agent's own; the one link out is the chart
        // library's attribution.
        let sources = html.matches(of: /src="([^"]*)"/).map { String($0.1) }
        #expect(sources == ["assets/lightweight-charts.js", "assets/auction-charts.js", "dashboard.js"], "\(sources)")
        #expect(!html.contains("<link") && html.matches(of: /href="http/).count == 1)
        #expect(page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        let script = try s.get("/dashboard.js")
        #expect(script.status == 200 && Self.text(script).contains("fetch('events'"))
        #expect(!Self.text(script).contains("http"))

        // The chart library and the layer on it, served by the agent itself (vendor/lightweight-charts/).
        let library = try s.get("/assets/lightweight-charts.js")
        #expect(library.status == 200 && library.headers["content-type"]?.hasPrefix("text/javascript") == true)
        #expect(Data(library.body) == Data(ChartLibrary.script.utf8))
        let layer = try s.get("/assets/auction-charts.js")
        #expect(layer.status == 200 && Data(layer.body) == Data(ChartLayer.script.utf8))
        // The budget (issue 27): the page with every script it loads under 400 kB.
        let pageBytes = page.body.count + script.body.count + library.body.count + layer.body.count
        #expect(pageBytes < 400_000, "the dashboard weighs \(pageBytes) bytes")

        let status = try JSONSerialization.jsonObject(with: Data(try s.get("/api/status").body)) as? [String: Any]
        #expect((status?["status"] as? [String: Any])?["state"] as? String == "active")
        #expect(try s.get("/nothing-here").status == 404)
    }

    @Test func theEventStreamSendsTheStatusEverySecondAndTheChartsOnce() throws {
        let s = try Served()
        let text = try Self.readStream(
            port: s.port, path: "/events", until: { $0.components(separatedBy: "event: status").count > 2 })
        #expect(text.hasPrefix("HTTP/1.1 200"))
        #expect(text.lowercased().contains("content-type: text/event-stream"))
        #expect(text.contains("retry: 2000"))
        #expect(text.components(separatedBy: "event: charts").count == 2, "charts only once while nothing changed")
        let charts = try #require(
            text.components(separatedBy: "event: charts\ndata: ").last?.components(separatedBy: "\n\n").first)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(charts.utf8)) as? [String: Any])
        let bars = try #require(obj["bars"] as? [[String: Any]])
        #expect(bars.count == s.engine.tape.minutes.count && bars.contains { $0["vah"] != nil }, "the value area")
        let profile = try #require(obj["profile"] as? [String: Any])
        #expect((profile["volumes"] as? [Double])?.count == s.engine.tape.profile?.volumes.count)
        #expect(profile["pocBin"] is Int, "the POC's bin")
        let footprint = try #require(obj["footprint"] as? [[String: Any]])
        #expect(footprint.contains { ($0["levels"] as? [[Double]])?.contains { $0[2] > 0 } == true }, "recent trades")
        #expect(obj["equity"] is [Any] && obj["performance"] is [String: Any])
        // The server learns of the closed page at its next write (within a second).
        let deadline = Date(timeIntervalSinceNow: 15)
        while s.http.feed.connectedPages != 0 && Date() < deadline { usleep(100_000) }
        #expect(s.http.feed.connectedPages == 0, "a closed page is forgotten")
    }

    @Test func beyondLoopbackATokenIsRequiredAndChecked() throws {
        #expect(throws: CommandError.self) {
            _ = try Served(listen: "0.0.0.0:0", token: nil)
        }
        #expect(throws: CommandError.self) {
            _ = try Served(listen: "0.0.0.0:0", token: "")
        }
        let s = try Served(listen: "0.0.0.0:0", token: "s3cret-token")
        #expect(try s.get("/metrics").status == 401)
        #expect(try s.get("/metrics", headers: ["Authorization: Bearer wrong"]).status == 401)
        #expect(try s.get("/metrics", headers: ["Authorization: Bearer s3cret-token-and-more"]).status == 401)
        #expect(try s.get("/metrics", headers: ["Authorization: Bearer s3cret-token"]).status == 200)
        #expect(try s.get("/api/status").status == 401)
        #expect(try s.get("/events").status == 401)
        // The probes and the page's static files stay open; /readyz then gives no reasons.
        #expect(try s.get("/healthz").status == 200)
        #expect(try s.get("/").status == 200 && s.get("/dashboard.js").status == 200)
        #expect(try s.get("/assets/lightweight-charts.js").status == 200, "a page's script tag sends no header")
        let anonymous = try JSONSerialization.jsonObject(with: Data(try s.get("/readyz").body)) as? [String: Any]
        #expect(anonymous?["reasons"] == nil && anonymous?["ready"] as? Bool == false)
        let told =
            try JSONSerialization.jsonObject(
                with: Data(try s.get("/readyz", headers: ["Authorization: Bearer s3cret-token"]).body))
            as? [String: Any]
        #expect((told?["reasons"] as? [String])?.isEmpty == false)
    }

    @Test func listenAddressesParseAndLoopbackIsRecognised() throws {
        #expect(ListenAddress("127.0.0.1:9464")?.isLoopback == true)
        #expect(ListenAddress("[::1]:9464")?.host == "::1" && ListenAddress("[::1]:9464")?.isLoopback == true)
        #expect(ListenAddress("0.0.0.0:80")?.isLoopback == false)
        #expect(ListenAddress("localhost:1")?.isLoopback == true)
        #expect(
            ListenAddress("127.0.0.1") == nil && ListenAddress("127.0.0.1:70000") == nil && ListenAddress(":80") == nil)
        let p = ConfigSchema.parameters.first { $0.key == "agent.http_listen" }!
        if case .failure(let why) = p.parse("9464") {
            #expect("\(why)".contains("host:port"))
        } else {
            Issue.record("9464 accepted")
        }
        if case .success = p.parse("off") {} else { Issue.record("off refused") }
    }

    // MARK: - The agent as a process

    @Test func aLiveScrapePassesPromtoolAndTheProbesFollowTheAgent() throws {
        let agent = try AgentProcess()
        try agent.start(env: "sim", quickSim)
        #expect(agent.waitForState("active"), "\(agent.log.suffix(3_000))")
        let port = try #require(agent.httpPort, "\(agent.log.suffix(2_000))")
        let get = { (path: String) throws -> HTTPReply in
            try CurlTransport(connectTimeoutMs: 2_000, totalTimeoutMs: 10_000).send(
                method: "GET", url: "http://127.0.0.1:\(port)\(path)",
                headers: [], body: nil)
        }
        #expect(agent.wait { (try? get("/readyz"))?.status == 200 }, "\(agent.log.suffix(2_000))")
        #expect(try atctlRun(agent, ["status"]).status == 0)
        let scrape = try get("/metrics")
        #expect(scrape.status == 200)
        let text = Self.text(scrape)
        for name in [
            "auction_agent_state", "auction_agent_position_btc", "auction_agent_equity_usdt",
            "auction_agent_data_age_seconds",
            "auction_agent_minute_close_seconds_bucket", "auction_agent_commands_total",
            "auction_agent_rest_calls_total",
            "auction_agent_loop_lag_seconds", "auction_agent_clock_offset_seconds",
            "auction_agent_kill_switch_distance_usdt",
        ] {
            #expect(text.contains(name), "\(name) in the scrape")
        }
        #expect(text.contains(#"auction_agent_commands_total{env="sim",mode="sim",command="status",result="ok"}"#))
        let promtool = try #require(
            ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "promtool is not installed: run `bash scripts/setup --tests` (Debian package prometheus)")
        let file = agent.directory.appendingPathComponent("scrape.txt")
        try scrape.body.withUnsafeBufferPointer { try Data($0).write(to: file) }
        let check = try runProcess("/bin/sh", ["-c", "\(promtool) check metrics < \(file.path)"])
        #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")

        // A flatten halts the agent: /readyz says so with the reason, the state gauge follows.
        #expect(try agent.ctl(["flatten", "--yes"]).status == 0)
        let ready = try get("/readyz")
        // Halted is past recovery: still ready to serve, and it says the state.
        #expect(Self.text(ready).contains(#""state":"halted""#), "\(Self.text(ready))")
        #expect(
            Self.text(try get("/metrics")).contains(#"auction_agent_state{env="sim",mode="sim",state="halted"} 1.0"#))
        #expect(
            Self.text(try get("/metrics")).contains(
                #"auction_agent_commands_total{env="sim",mode="sim",command="flatten",result="ok"} 1"#))
    }

    @Test func aPortInUseRefusesTheStartAndSaysWhy() throws {
        // Hold a port, then ask the agent for it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 1)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let agent = try AgentProcess()
        try agent.start(env: "sim", quickSim + ["--set", "agent.http_listen=127.0.0.1:\(port)"])
        agent.process.waitUntilExit()
        #expect(agent.process.terminationStatus == 1)
        #expect(
            agent.log.contains("cannot listen on 127.0.0.1:\(port) (agent.http_listen)"), "\(agent.log.suffix(2_000))")
        #expect(agent.events("agent.ready").isEmpty, "never ready")
    }

    @Test func monitoringRulesAndDashboardNameTheMetricsTheAgentServes() throws {
        let rules = packageRoot.appendingPathComponent("monitoring/alerts.yml").path
        let promtool = try #require(
            ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "promtool is not installed: run `bash scripts/setup --tests`")
        let check = try runProcess(promtool, ["check", "rules", rules])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let text = try String(contentsOfFile: rules, encoding: .utf8)
        let grafana = try String(
            contentsOfFile: packageRoot.appendingPathComponent("monitoring/grafana-dashboard.json").path,
            encoding: .utf8)
        _ = try JSONSerialization.jsonObject(with: Data(grafana.utf8))
        let known = Set(DescribedPrometheusFactory.help.keys)
        for source in [text, grafana] {
            let used = Set(source.matches(of: /auction_agent_[a-z_]+/).map { String($0.output) })
            for name in used {
                let family = ["_bucket", "_sum", "_count"].reduce(name) {
                    $0.hasSuffix($1) ? String($0.dropLast($1.count)) : $0
                }
                #expect(known.contains(family), "\(name) is not a metric the agent serves")
            }
        }
        // Each alert names its runbook, and the runbook exists.
        for runbook in text.matches(of: /runbook: (runbooks\/[a-z-]+\.md)/).map({ String($0.output.1) }) {
            #expect(
                FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(runbook).path), "\(runbook)")
        }
        #expect(
            text.components(separatedBy: "- alert:").count - 1 == text.components(separatedBy: "runbook: runbooks/")
                .count - 1)
    }

    // MARK: - The page in a real browser

    /// The volume profile and the footprint in Chromium against the engine that fed them (issue 27): one bar per bin of
    /// the profile the value area was computed on, the value area's bins shaded and the POC's marked; the footprint's
    /// cells for a chosen minute are the Engine's footprint of that minute, summed per row.
    @Test func theProfileAndTheFootprintShowTheEnginesNumbers() throws {
        let s = try Served()
        let browser = try HeadlessBrowser()
        try browser.open("http://127.0.0.1:\(s.port)/")
        #expect(browser.waitFor("document.querySelectorAll('#profile .ac-bin').length > 0", seconds: 60))
        #expect(browser.waitFor("document.querySelector('#footprint td[data-buy]') !== null", seconds: 60))
        // Everything the page loaded came from the agent: it works with no other network.
        let origin = "http://127.0.0.1:\(s.port)/"
        #expect(
            try browser.evaluate(
                "performance.getEntriesByType('resource').every(e => e.name.startsWith('\(origin)'))"
                    + " && performance.getEntriesByType('resource').length >= 3") as? Bool == true)
        let tape = s.engine.tape
        let i = s.engine.settings.instrument
        let profile = try #require(tape.profile)
        let va = try #require(tape.minutes.last?.valueArea)

        func js(_ e: String) throws -> String { try browser.evaluate(e) as? String ?? "?" }
        let bins = try js(
            "[...document.querySelectorAll('#profile .ac-bin')].map(b => b.dataset.bin + ':' + b.dataset.volume).join(' ')"
        )
        let expected = profile.volumes.enumerated().map { "\($0.offset):\(i.size($0.element))" }.joined(separator: " ")
        #expect(bins == expected, "one bar per bin, the Engine's volumes")
        let poc = try js("[...document.querySelectorAll('#profile .ac-bin.ac-poc')].map(b => b.dataset.bin).join()")
        #expect(poc == "\(try #require(profile.pocBin(of: va)))")
        let inside = profile.volumes.indices.filter {
            profile.lowTicks(ofBin: $0) >= va.valTicks && profile.lowTicks(ofBin: $0) + profile.binTicks <= va.vahTicks
        }
        let shaded = try js("[...document.querySelectorAll('#profile .ac-bin.ac-va')].map(b => b.dataset.bin).join()")
        #expect(shaded == inside.map(String.init).joined(separator: ","), "the value area's bins")
        #expect(inside.count == va.binCount)

        // The footprint: the last traded minute, row by row.
        let chosen = try #require(tape.footprints.last { !$0.levels.isEmpty })
        let k = try #require(Int64(try js("document.querySelector('#footprint table').dataset.rowBins")))
        var rows: [Int64: (sell: Lots, buy: Lots)] = [:]
        for l in chosen.levels {
            let r = floorDiv(l.bin, k)
            rows[r, default: (0, 0)].sell += l.sell
            rows[r, default: (0, 0)].buy += l.buy
        }
        let cells = try js(
            "JSON.stringify([...document.querySelectorAll('#footprint td[data-minute=\"\(chosen.ts / 1_000)\"][data-buy]')]"
                + ".map(td => [Number(td.dataset.row), Number(td.dataset.sell), Number(td.dataset.buy)]))")
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(cells.utf8)) as? [[Double]])
        #expect(shown.count == rows.count, "one cell per row with volume")
        for c in shown {
            let want = try #require(rows[Int64(c[0])], "row \(c[0])")
            #expect(abs(c[1] - i.size(want.sell)) < 1e-9 && abs(c[2] - i.size(want.buy)) < 1e-9, "row \(c[0])")
        }
        // Readable at 1400 px (the browser's window): 30 columns, and no cell's numbers cut off.
        #expect(try browser.evaluate("document.querySelectorAll('#footprint tr:first-child th').length") as? Int == 31)
        let cut = try js(
            "[...document.querySelectorAll('#footprint td[data-buy]')].filter(td => td.scrollWidth > td.clientWidth)"
                + ".map(td => td.textContent + ' ' + td.scrollWidth + '>' + td.clientWidth).join(', ')")
        #expect(cut == "", "cells too narrow for their numbers: \(cut)")
        // What a reader sees is those numbers.
        #expect(
            try browser.evaluate(
                "[...document.querySelectorAll('#footprint td[data-buy]')].every(td => td.textContent === "
                    + "AuctionCharts.volume(Number(td.dataset.sell)) + '×' + AuctionCharts.volume(Number(td.dataset.buy)))"
            )
                as? Bool == true)

        // Imbalances, on a footprint of its own: buyers at 102 against sellers at 101 (3 ≥ 3 × 1), sellers at 100
        // against buyers at 101 (0.9 ≥ 3 × 0.3); buyers at 101 against sellers at 100 are not (0.3 < 3 × 0.9).
        let marked = """
            (() => { const d = document.createElement('div'); document.body.append(d);
              const f = AuctionCharts.footprintTable(d, { ratio: 3 });
              f.set([{ t: 0, width: 1, levels: [[100, 0.9, 0.5, 0], [101, 1, 0.3, 0], [102, 0.2, 3, 0]] }]);
              const mark = (p, side) => d.querySelector(`td[data-row="${p}"] .ac-${side}`).classList.contains('ac-imbalance');
              const r = [mark(102, 'buy'), mark(100, 'sell'), mark(101, 'buy')];
              f.setRatio(4); r.push(mark(102, 'buy'));
              d.remove(); return r.join(); })()
            """
        #expect(try js(marked) == "true,true,false,false", "and none at 4×")
    }

    @Test func theDashboardRendersInChromiumAndFollowsAFlattenWithoutReload() throws {
        let agent = try AgentProcess()
        try agent.start(env: "sim", quickSim)
        #expect(agent.wait { agent.status()?.position != nil }, "a position opens: \(agent.log.suffix(3_000))")
        let port = try #require(agent.httpPort)
        let browser = try HeadlessBrowser()
        try browser.open("http://127.0.0.1:\(port)/")
        let seen = {
            (try? browser.evaluate(
                "document.getElementById('va').textContent + ' | ' + document.getElementById('banner').textContent"))
                as? String ?? "?"
        }
        #expect(
            browser.waitFor("document.querySelectorAll('#profile .ac-bin.ac-poc').length === 1", seconds: 60),
            "the volume profile is drawn: \(seen())")
        #expect(browser.waitFor("document.querySelector('#price canvas') !== null"), "the price chart")
        #expect(browser.waitFor("document.getElementById('va').textContent.includes('POC')", seconds: 60), "\(seen())")
        #expect(
            browser.waitFor("/^(long|short) /.test(document.getElementById('position').textContent)"),
            "the position: \(String(describing: try? browser.evaluate("document.getElementById('position').textContent")))"
        )
        #expect(browser.waitFor("document.querySelectorAll('#signals tr').length > 0"), "the signal feed")
        #expect(
            browser.waitFor(
                "document.querySelector('#footprint td[data-buy]') !== null && document.querySelector('#equityChart canvas') !== null"
            ))
        #expect(try browser.evaluate("document.getElementById('state').textContent") as? String == "active")
        // Marks the document: a reload would lose it.
        _ = try browser.evaluate("window.__sameDocument = 42")
        if let png = try? browser.screenshot() {
            try? png.write(to: agent.directory.appendingPathComponent("dashboard.png"))
        }

        #expect(try agent.ctl(["flatten", "--yes"]).status == 0)
        #expect(browser.waitFor("document.getElementById('position').textContent === 'flat'"), "the flatten appears")
        #expect(browser.waitFor("document.getElementById('state').textContent === 'halted'"))
        #expect(try browser.evaluate("window.__sameDocument") as? Int == 42, "without a reload")

        // The agent gone: the page says so and hides its numbers.
        #expect(agent.terminate() == 0, "a graceful stop with a page connected: \(agent.log.suffix(2_000))")
        #expect(browser.waitFor("document.body.classList.contains('offline')"), "an unreachable agent shows as such")
        #expect(
            try browser.evaluate("getComputedStyle(document.getElementById('position')).visibility") as? String
                == "hidden")
        #expect(
            (try browser.evaluate("document.getElementById('banner').textContent") as? String)?.contains("unreachable")
                == true)
        if let dir = ProcessInfo.processInfo.environment["AUCTION_DASHBOARD_SCREENSHOT"],
            let png = try? Data(contentsOf: agent.directory.appendingPathComponent("dashboard.png"))
        {
            try png.write(to: URL(fileURLWithPath: dir))
        }
    }

    // MARK: - Helpers

    /// Reads a response from a raw socket until `until` holds for what arrived (or 15 s), then closes.
    static func readStream(port: Int, path: String, until: (String) -> Bool) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw BrowserError("connect: \(errno)") }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let deadline = Date(timeIntervalSinceNow: 15)
        while Date() < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += chunk[0..<n]
            if until(String(decoding: received, as: UTF8.self)) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    func atctlRun(_ agent: AgentProcess, _ args: [String]) throws -> Run { try agent.ctl(args) }
}

public import AgentConfig
import AgentSupport
import Charts
import ControlProtocol
public import Engine
import Exchange
import ExchangeStreams
import Foundation
import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle

/// The agent's read-only HTTP server (issue 12; docs/OPERATIONS.md): the dashboard (`/`, `/dashboard.js`, the chart
/// library and layer under `/assets/`, `/events`), `/metrics`, `/healthz`, `/readyz` and `/api/status`. Nothing here changes the agent: control stays
/// on the Unix socket. Pages read the published board and the database, as the control socket does.
///
/// Listening beyond loopback needs a bearer token (`agent.http_token_env`); every path but `/healthz`, `/readyz`
/// and the page's own static files then asks for `Authorization: Bearer TOKEN` (the page takes it from its
/// URL's `#token=` fragment, which the browser never sends). `/readyz` without the token answers its verdict
/// without the reasons.
public final class OperatorHTTP: Sendable {
    public let address: ListenAddress
    let token: String?
    let board: StatusBoard
    let metrics: AgentMetrics
    public let feed: DashboardFeed
    let logger: Logger
    private let bound = OneShot<Int>()
    /// Finished when the server listens (`port` is then set); the daemon also finishes it when the server's group
    /// ends first, so a start that waits on it never hangs.
    let listening = Completion()

    /// `token` is required (non-empty) unless `address` is loopback.
    public init(
        address: ListenAddress, token: String?, board: StatusBoard, store: AgentStore, metrics: AgentMetrics,
        instrument: Instrument, thresholds: DashboardThresholds, logger: Logger
    ) throws {
        let token = token.flatMap { $0.isEmpty ? nil : $0 }
        if !address.isLoopback && token == nil {
            throw CommandError(
                "agent.http_listen \(address) is beyond loopback and needs a bearer token: set the environment variable "
                    + "agent.http_token_env names (or listen on 127.0.0.1, or off)")
        }
        self.address = address
        self.token = token
        self.board = board
        self.metrics = metrics
        feed = DashboardFeed(board: board, store: store, instrument: instrument, thresholds: thresholds)
        self.logger = logger
    }

    /// The port once the server listens (the configured one, or the one the system chose for port 0).
    public var port: Int? { bound.value }
    /// Waits up to `ms` for the server to listen; nil if it did not.
    public func waitUntilListening(ms: Int64) -> Int? { bound.wait(ms: ms) }

    /// The dashboard's address for people (`http://127.0.0.1:9464/`).
    public var url: String {
        let host = address.host == "0.0.0.0" || address.host == "::" ? "HOST" : address.host
        return "http://\(host.contains(":") ? "[\(host)]" : host):\(port ?? address.port)/"
    }

    /// A lifecycle service: serves until the graceful stop, which first ends the pages' event streams.
    public func service() -> some Service {
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { [bound, listening] channel in
                bound.set(channel.localAddress?.port ?? 0)
                listening.finish()
            }, logger: logger)
        return HTTPService(app: app, feed: feed, executor: executor)
    }

    /// The server's tasks run on a thread of their own: pages are answered even while the shared pool is busy.
    private let executor = DedicatedExecutor(label: "http")

    /// Serves until the task is cancelled, outside a service group (tests, tools). The task starts on the server's
    /// own thread, so it runs even while every thread of the shared pool is blocked.
    public func serveInBackground() -> Task<Void, any Error> {
        let service = self.service()
        return Task(executorPreference: executor) { try await service.run() }
    }

    struct HTTPService: Service {
        let app: Application<RouterResponder<BasicRequestContext>>
        let feed: DashboardFeed
        let executor: DedicatedExecutor

        func run() async throws {
            try await withTaskExecutorPreference(executor) {
                try await withGracefulShutdownHandler {
                    try await app.run()
                } onGracefulShutdown: {
                    feed.stop()
                }
            }
        }
    }

    // MARK: - Routes

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        if let token { router.add(middleware: BearerTokenMiddleware(token: token)) }
        let board = self.board
        let metrics = self.metrics
        let feed = self.feed
        let token = self.token

        router.get("/healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { request, _ in
            let state = board.current
            let reasons = Readiness.reasons(state, engineSilentMs: board.engineSilentMs(wall: .now))
            let ready = reasons.isEmpty
            let authorized =
                token == nil || BearerTokenMiddleware<BasicRequestContext>.authorized(request, token: token!)
            let body = ReadyReply(
                ready: ready, status: state?.status.health.status ?? "starting",
                state: state?.status.state ?? "starting",
                reasons: authorized ? reasons : nil)
            return Response(
                status: ready ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: DashboardFeed.encode(body))))
        }
        router.get("/metrics") { _, _ in
            metrics.refresh(from: board, wall: .now)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        router.get("/api/status") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: feed.statusJSON())))
        }
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                    .contentSecurityPolicy: DashboardPage.contentSecurityPolicy,
                ],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/dashboard.js") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.script)))
        }
        // The chart library (vendor/lightweight-charts/), from the agent itself: the pages need no other host.
        router.get("/assets/lightweight-charts.js") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=86400"],
                body: .init(byteBuffer: ByteBuffer(string: ChartLibrary.script)))
        }
        // The chart layer on it (Sources/Charts/ChartLayer.swift): changes with the agent, so never cached stale.
        router.get("/assets/auction-charts.js") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(string: ChartLayer.script)))
        }
        router.get("/events") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    feed.connect()
                    defer { feed.disconnect() }
                    var chartsSent = 0
                    // Tell the browser how soon to come back if the stream drops.
                    try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                    while !feed.isStopping && !Task.isCancelled {
                        let e = feed.events()
                        var out = e.status
                        if e.chartsVersion != chartsSent && !e.charts.isEmpty {
                            out += e.charts
                            chartsSent = e.chartsVersion
                        }
                        try await writer.write(ByteBuffer(bytes: out))
                        try await Task.sleep(for: .seconds(1))
                    }
                    try await writer.finish(nil)
                })
        }
        return router
    }

    struct ReadyReply: Encodable {
        var ready: Bool
        var status: String
        var state: String
        /// Left out when a token is required and was not given.
        var reasons: [String]?
    }
}

/// `Authorization: Bearer TOKEN` on every path but the probes and the page's static files.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    static var open: Set<String> {
        [
            "/healthz", "/readyz", "/", "/dashboard.js", "/assets/lightweight-charts.js", "/assets/auction-charts.js",
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if Self.open.contains(request.uri.path) || Self.authorized(request, token: token) {
            return try await next(request, context)
        }
        return Response(
            status: .unauthorized,
            headers: [.wwwAuthenticate: #"Bearer realm="auction-agent""#, .contentType: "text/plain"],
            body: .init(byteBuffer: ByteBuffer(string: "a bearer token is required (Authorization: Bearer ...)\n")))
    }

    /// Constant-time comparison of the presented token with the expected one.
    static func authorized(_ request: Request, token: String) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.dropFirst(7).utf8)
        let expected = Array(token.utf8)
        var diff = given.count ^ expected.count
        for i in 0..<expected.count { diff |= Int(expected[i] ^ (i < given.count ? given[i] : 0)) }
        return diff == 0
    }
}

// swift-tools-version:6.1
import PackageDescription

/// One list of settings for every target, as in hummingbird and swift-websocket.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "auction-trader",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "auction-agent", targets: ["Agent"]),
        .executable(name: "atctl", targets: ["Control"]),
        .executable(name: "bench", targets: ["Bench"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The operator's window (issue 12): HTTP server, metrics API and its Prometheus backend.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Pure, deterministic core: no I/O, no clock, Foundation only for basics.
        .target(name: "Engine", swiftSettings: swiftSettings),
        // Reading recorded trades and quotes (CSV, optionally gzip) into Engine events.
        .target(
            name: "MarketData", dependencies: ["Engine", "CZlib", "CIsal", "COpenSSL"], swiftSettings: swiftSettings),
        // Bybit v5: the REST client over libcurl (signing with OpenSSL's HMAC-SHA256, time sync, retries, paging,
        // typed replies) and the WebSocket auth signature.
        .target(name: "Exchange", dependencies: ["Engine", "COpenSSL", "CCurl"], swiftSettings: swiftSettings),
        // Bybit's public and private WebSocket streams (swift-websocket's WSClient over NIO), kept apart from the
        // REST client so that what needs no NIO builds without it.
        .target(
            name: "ExchangeStreams",
            dependencies: [
                "Exchange", "Engine", "MarketData",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The synthetic market generator and the Bybit-compatible venue (REST and WebSocket on loopback, faults).
        .target(name: "Simulator", dependencies: ["Engine", "Exchange", "COpenSSL"], swiftSettings: swiftSettings),
        // The request and reply types both sides of the control socket share (Codable, no I/O).
        .target(name: "ControlProtocol", swiftSettings: swiftSettings),
        // What the agent's targets share: errors that name the file, atomic writes, signal masks, how times and
        // numbers are written, JSON text.
        .target(name: "AgentSupport", dependencies: ["Engine"], swiftSettings: swiftSettings),
        // The configuration: schema, loader (YAML, search path, --set, check, render) and the typed
        // `AgentConfiguration` built from it.
        .target(
            name: "AgentConfig",
            dependencies: ["Engine", "AgentSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // SVG charts, drawn the same way for the backtest's report and the dashboard.
        .target(name: "Charts", dependencies: ["Engine", "AgentSupport"], swiftSettings: swiftSettings),
        // Research on recorded data: the features run, the backtest's outputs and report, the grid.
        .target(
            name: "Research",
            dependencies: [
                "Engine", "MarketData", "AgentSupport", "AgentConfig", "Charts",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon: engine loop, venues, store, control socket, logs, systemd, alerts, warm start, HTTP and
        // metrics, the lifecycle services.
        .target(
            name: "Daemon",
            dependencies: [
                "Engine", "MarketData", "Simulator", "Exchange", "ExchangeStreams", "ControlProtocol", "CSystemd",
                "AgentSupport", "AgentConfig", "Charts",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `auction-agent` command line (ArgumentParser): one thin command per tool over the targets above.
        .target(
            name: "AgentCLI",
            dependencies: [
                "Engine", "MarketData", "Simulator", "Exchange", "ExchangeStreams", "ControlProtocol", "AgentSupport",
                "AgentConfig", "Research", "Daemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "Agent", dependencies: ["AgentCLI", "AgentSupport"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "Control",
            dependencies: ["ControlProtocol", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // Links only what it measures (no command line).
        .executableTarget(
            name: "Bench",
            dependencies: [
                "Engine", "MarketData", "Simulator", "Exchange", "ExchangeStreams", "ControlProtocol", "AgentSupport",
                "AgentConfig", "Research", "Daemon",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CIsal", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        .testTarget(name: "EngineTests", dependencies: ["Engine", "AgentConfig"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MarketDataTests",
            dependencies: ["MarketData", "Engine", "CZlib"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExchangeTests", dependencies: ["Exchange", "ExchangeStreams", "Simulator", "Engine"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "SimulatorTests", dependencies: ["Simulator", "Engine", "AgentConfig"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "AgentCLI", "Daemon", "Research", "AgentConfig", "AgentSupport", "Engine", "MarketData",
                "Agent", "Control", "Simulator", "Exchange", "ExchangeStreams",
                "ControlProtocol",
                // A headless browser driven over the DevTools protocol (the dashboard's test).
                .product(name: "WSClient", package: "swift-websocket"), .product(name: "Logging", package: "swift-log"),
                // Databases in the layout of earlier versions (the snapshot migration test).
                .product(name: "GRDB", package: "GRDB.swift"),
                // The Kubernetes manifests, read as a cluster would.
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

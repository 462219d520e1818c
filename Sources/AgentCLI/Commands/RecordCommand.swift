import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import ExchangeStreams
import Foundation
import Logging
import MarketData
import ServiceLifecycle
import UnixSignals

/// `auction-agent record`: the public market into daily files, until SIGTERM.
struct RecordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record Bybit's public trades and L1 quotes into daily files (the recorder's systemd service).",
        discussion: """
            Subscribes to exchange.public_ws_url (publicTrade and orderbook.1 of instrument.symbol) and writes into \
            DIR one gzip file per UTC day and kind: trades in Bybit's dump format (SYMBOLYYYY-MM-DD.csv.gz, with \
            the exchange's trade id and taker side) and quotes as quotes-YYYY-MM-DD.csv.gz (ts,bid_px,bid_sz,\
            ask_px,ask_sz). Files rotate at 00:00 UTC. Every --flush-seconds the files' gzip members are ended and \
            fsynced: a crash loses at most those seconds and never what was written before.

            Restarted, it continues the day: an unfinished last member is cut off, trades already written (by \
            exchange id) and quotes not newer than the last are dropped, and the time it was not running goes into \
            DIR/gaps.csv (from,to,cause) with every disconnection of the stream. backtest, features, grid and \
            walkforward report the gaps of their range. No keys are needed. A write failure (disk full) stops the \
            recorder with a critical log line and exit 1 (systemd restarts it; the gap is listed).

            Example:  auction-agent record --env paper --out /var/lib/auction-recorder/bybit
            """
    )

    @Option(help: ArgumentHelp("Directory of the daily files (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Seconds between the files' flushes to disk (1 to 60).", valueName: "s"))
    var flushSeconds: Int = 5

    @OptionGroup var config: ConfigOptions

    func validate() throws {
        guard (1...60).contains(flushSeconds) else { throw ValidationError("--flush-seconds must be 1 to 60") }
    }

    func run() async throws {
        unblockStopSignals()
        let resolved = try ConfigLoader.load(config.selection)
        let envName = config.environment ?? resolved.environment ?? "custom"
        let settings = AgentConfiguration(resolved, environment: envName)
        let url = settings.exchange.publicStreamURL
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://") else {
            throw CommandError(
                "exchange.public_ws_url '\(url)' is not a WebSocket URL: the recorder needs a stream (for the "
                    + "simulator, start `auction-agent sim-exchange` and give its ws://127.0.0.1:PORT/v5/public/linear)"
            )
        }
        let sink = LogSink(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in AgentLogHandler(label: label, sink: sink) }
        let logger = Logger(label: "recorder")
        let recorder = try MarketRecorder(directory: out, instrument: settings.instrument, logger: logger)
        let stream = BybitPublicStream(
            settings: StreamSettings(url: url), instrument: settings.instrument, logger: Logger(label: "stream.public"),
            keepTradeIds: true)
        logger.notice(
            "recorder starting",
            metadata: [
                "event": "record.start", "env": "\(envName)", "url": "\(url)", "dir": "\(out)",
                "symbol": "\(settings.instrument.symbol)",
            ])
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(
                        service: RecorderService(recorder: recorder, stream: stream, flushSeconds: flushSeconds),
                        successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "recorder")
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "lifecycle")))
        try await group.run()
        let counts = recorder.close()
        logger.notice(
            "recorder stopped",
            metadata: [
                "event": "record.stop", "trades": "\(counts.trades)", "quotes": "\(counts.quotes)",
                "duplicates_dropped": "\(counts.duplicates)", "gaps": "\(counts.gaps)",
            ])
        if let error = counts.error { throw CommandError("recording failed: \(error)") }
    }
}

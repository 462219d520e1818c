import AgentConfig
import AgentSupport
import Engine
import Exchange
import Foundation
import Logging
import Simulator

/// Mode `sim`: the Bybit-compatible simulator inside the agent's process, serving its public stream on a free
/// loopback port, with the market generator paced at `sim.speed`.
///
/// On a first start the generator plays `sim.warm_minutes` of history at once into the venue, which serves it as
/// Bybit does (`/v5/market/kline`, `/v5/market/recent-trade`): the agent's warm start reads it from there. On a
/// restart the market continues from the last stored trade (time and price), so the stored window stays valid.
final class InProcessSimulator: Sendable {
    let venue: SimVenue
    let server: SimHTTPServer
    let driver: SimMarketDriver
    /// Market time until pacing starts (recovery uses it), anchored again by `startPacing`.
    let clock: MarketClock
    let publicURL: String
    var port: UInt16 { server.port }

    private init(venue: SimVenue, server: SimHTTPServer, driver: SimMarketDriver, clock: MarketClock) {
        self.venue = venue
        self.server = server
        self.driver = driver
        self.clock = clock
        publicURL = "ws://127.0.0.1:\(server.port)/v5/public/linear"
    }

    static func start(settings: AgentConfiguration, store: AgentStore, logger: Logger) throws -> InProcessSimulator {
        var venueConfig = SimVenueConfig()
        venueConfig.instrument = settings.instrument
        venueConfig.rateLimitPerSecond = 10_000
        let venue = SimVenue(config: venueConfig)
        var market = MarketGeneratorConfig()
        market.seed = settings.sim.seed
        market.hours = 24 * 365
        let now = wallClockMillis()
        var warmEnd: Int64
        if let last = try store.lastRawTs(), let trade = try store.lastTrade() {
            // Continue the stored market: same seed, from the next millisecond, at the last price.
            market.startMs = last + 1
            market.startPriceTicks = trade.price
            warmEnd = market.startMs
        } else {
            market.startMs = minuteStart(of: now) - Int64(settings.sim.warmMinutes) * millisPerMinute
            warmEnd = minuteStart(of: now)
        }
        var source = GeneratedMarket(config: market)
        // The history goes to the venue only, as an exchange keeps it: the agent reads it as it would Bybit's
        // (klines and recent trades: the warm start), not from its own database.
        var played = 0
        while let e = source.peek(), e.ts < warmEnd {
            venue.onMarket(source.next()!)
            played += 1
        }
        if played > 0 {
            logger.notice(
                "simulated history played into the venue",
                metadata: [
                    "event": "sim.warm_history", "events": "\(played)",
                    "minutes": "\(settings.sim.warmMinutes)",
                ])
        }
        let driver = SimMarketDriver(venue: venue, source: source, speed: settings.sim.speed)
        let server = venue.makeServer()
        try server.start(port: 0)
        let firstPaced = source.peek()?.ts ?? warmEnd
        let clock = MarketClock(speed: settings.sim.speed, anchorMarket: firstPaced, anchorWall: .now)
        logger.notice(
            "simulator listening on loopback",
            metadata: [
                "event": "sim.started", "port": "\(server.port)",
                "speed": "\(formatNumber(settings.sim.speed))",
            ])
        return InProcessSimulator(venue: venue, server: server, driver: driver, clock: clock)
    }

    /// Starts the paced market; returns the market clock anchored at this moment.
    func startPacing() -> MarketClock {
        driver.start()
        return MarketClock(speed: clock.speed, anchorMarket: clock.anchorMarket, anchorWall: .now)
    }

    func stop() {
        driver.stop()
        server.stop()
    }
}

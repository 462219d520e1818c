import Foundation
import Testing

@testable import AgentSupport
@testable import Daemon

/// The boundaries docs/ARCHITECTURE.md draws, read from the sources: a venue reports and never reaches into the
/// engine, and Bybit's enumerations are read in one place.
@Suite(.tags(.unit)) struct BoundaryTests {
    /// The Swift files under `folder`, each with its code lines (comments left out).
    func code(under folder: String) throws -> [(path: String, lines: [String])] {
        let root = packageRoot.appending(path: folder)
        let paths = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        return try paths.filter { $0.hasSuffix(".swift") }.sorted().map { path in
            let text = try String(contentsOf: root.appending(path: path), encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                String(line.range(of: "//").map { line[..<$0.lowerBound] } ?? line[...])
            }
            return ("\(folder)/\(path)", lines)
        }
    }

    @Test func noVenueHoldsOrNamesTheEngine() throws {
        let files = try code(under: "Sources/Daemon/Venue")
        #expect(files.count >= 5)
        for (path, lines) in files {
            for (n, line) in lines.enumerated() where line.contains("AgentEngine") || line.contains("engine.") {
                Issue.record("\(path):\(n + 1) reaches into the engine: \(line)")
            }
        }
    }

    /// Bybit's order statuses and execution kinds as text live in the decoder (BybitEnums.swift) and in the
    /// simulator, the exchange's model; everywhere else they are enum cases, so a typo does not compile.
    @Test func bybitValuesAreComparedOnlyInTheDecoder() throws {
        let values = [
            "\"New\"", "\"PartiallyFilled\"", "\"Untriggered\"", "\"Filled\"", "\"Cancelled\"", "\"Rejected\"",
            "\"Deactivated\"", "\"Triggered\"", "\"AdlTrade\"", "\"BustTrade\"", "\"StopLoss\"", "\"TakeProfit\"",
        ]
        var checked = 0
        for folder in ["Sources/Daemon", "Sources/Exchange", "Sources/ExchangeStreams", "Sources/Engine"] {
            for (path, lines) in try code(under: folder) where !path.hasSuffix("REST/BybitEnums.swift") {
                checked += 1
                for (n, line) in lines.enumerated() {
                    for v in values where line.contains(v) {
                        Issue.record("\(path):\(n + 1) compares Bybit's \(v) as text: \(line)")
                    }
                }
            }
        }
        #expect(checked > 50)
    }
}

/// Wall time and market time are distinct types (docs/ARCHITECTURE.md, "Units"); the market clock is where one
/// becomes the other.
@Suite(.tags(.unit)) struct WallTimeTests {
    @Test func aDifferenceOfWallTimesIsADurationAndTheClockMapsWallToMarket() {
        let start = WallTime(1_767_230_100_000)
        let later = start + 1_500
        #expect(later - start == 1_500)
        #expect(later - 500 == WallTime(1_767_230_101_000))
        #expect(start < later && WallTime.zero < start)
        // The simulator's clock at 120x: 1.5 s of wall time is 3 minutes of market time from the anchor.
        let clock = MarketClock(speed: 120, anchorMarket: 1_700_000_000_000, anchorWall: start)
        #expect(clock.now(wall: later) == 1_700_000_000_000 + 180_000)
        #expect(MarketClock.realTime().now(wall: later) == later.millis)
    }
}

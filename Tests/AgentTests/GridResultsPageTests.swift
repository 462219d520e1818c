import Foundation
import Testing

@testable import AgentConfig
@testable import Research

/// `results.html` in a real browser (headless chromium), opened from the file with no network: every run in the
/// table, sorting by a column, one heat-map cell per pair of values of the two parameters chosen, each the best run.
@Suite(.tags(.e2e)) struct GridResultsPageTests {
    /// A grid over a (3 values), b (2) and c (2): 12 runs whose net P&L is 100a + 10b + (1 if c is "y").
    func page() throws -> (html: String, rows: [GridRow]) {
        let spec = try GridSpec.parse(
            yaml: """
                rank_by: net_pnl
                parameters:
                  sizing.risk_pct: [0.01, 0.02, 0.03]
                  risk.cooldown_minutes: [1, 2]
                  signal.qimb_signal: [ema, close]
                """, source: "g.yaml")
        var rows: [GridRow] = []
        for (i, combination) in spec.combinations.enumerated() {
            let a = Double(combination[0].value.description)!
            let b = Double(combination[1].value.description)!
            let c = combination[2].value.description == "close" ? 1.0 : 0
            let net = 10_000 * a + 10 * b + c
            let summary = try #require(
                GridSummary(
                    text:
                        "trades=\(i + 1) net_pnl=\(net) gross_pnl=\(net + 5) fees=5 funding=0 max_drawdown=\(20 - b) max_drawdown_pct=0.01 final_equity=\(10_000 + net)"
                ))
            rows.append(GridRow(index: i, parameters: combination, summary: summary))
        }
        let ranked = rank(rows, by: .netPnL)
        // The best run kept its report (grid --keep-reports 1).
        let html = gridResultsHTML(
            ranked, spec: spec, rankBy: .netPnL, title: "grid test", reports: [12: "runs/12/report.html"])
        return (html, ranked)
    }

    @Test func thePageHoldsEveryRunAndLoadsNothing() throws {
        let (html, rows) = try page()
        #expect(!html.contains("http://") && !html.contains("https://"), "nothing from another host")
        #expect(html.contains("default-src 'none'"))
        #expect(rows.count == 12 && html.components(separatedBy: "\"run\":").count == 13)
    }

    @Test func itSortsAndItsHeatMapHasOneCellPerCombination() throws {
        let (html, _) = try page()
        let file = URL(fileURLWithPath: NSTemporaryDirectory() + "results-\(UUID().uuidString).html")
        try html.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let browser = try HeadlessBrowser()
        try browser.open(file.absoluteString)
        #expect(browser.waitFor("document.body.dataset.ready === 'true'"))
        #expect(try browser.evaluate("document.querySelectorAll('#runs tbody tr').length") as? Int == 12)
        // Ranked best first: run 12 (a 0.03, b 2, c close) on top.
        #expect(try browser.evaluate("document.querySelector('#runs tbody tr').id") as? String == "run-12")
        #expect(
            try browser.evaluate(
                "document.querySelectorAll('#runs a').length === 1 && "
                    + "document.querySelector('#run-12 a').getAttribute('href') === 'runs/12/report.html'") as? Bool
                == true, "the kept report, linked")
        // A click on net_pnl sorts it ascending, a second descending.
        let click = "[...document.querySelectorAll('#runs th')].find(t => t.dataset.key === 'net_pnl').click()"
        _ = try browser.evaluate(click)
        #expect(try browser.evaluate("document.querySelector('#runs tbody tr').id") as? String == "run-1")
        _ = try browser.evaluate(click)
        #expect(try browser.evaluate("document.querySelector('#runs tbody tr').id") as? String == "run-12")

        // Risk across, cooldown down: 3 × 2 cells, each the better of its two runs (c = close adds 1).
        #expect(try browser.evaluate("document.querySelectorAll('#heat td.cell').length") as? Int == 6)
        let cells =
            "[...document.querySelectorAll('#heat td.cell')].map(td => td.textContent + ' ' + td.title).join('|')"
        #expect(
            try browser.evaluate(cells) as? String
                == "111 run 2 (rank 11)|211 run 6 (rank 7)|311 run 10 (rank 3)|121 run 4 (rank 9)|221 run 8 (rank 5)|321 run 12 (rank 1), report kept"
        )
        // Another pair of parameters: qimb_signal across, risk down: 2 × 3 cells.
        _ = try browser.evaluate(
            """
            document.getElementById('x').value = 'signal.qimb_signal';
            document.getElementById('y').value = 'sizing.risk_pct';
            document.getElementById('y').dispatchEvent(new Event('change'));
            """)
        #expect(try browser.evaluate("document.querySelectorAll('#heat td.cell').length") as? Int == 6)
        #expect(try browser.evaluate("document.querySelectorAll('#heat tr').length") as? Int == 4)
        // The drawdown is better lower: the heat map's best for max_drawdown is b = 2's.
        _ = try browser.evaluate(
            """
            document.getElementById('metric').value = 'max_drawdown';
            document.getElementById('metric').dispatchEvent(new Event('change'));
            """)
        #expect(
            try browser.evaluate("[...document.querySelectorAll('#heat td.cell')].every(td => td.textContent === '18')")
                as? Bool == true)
    }
}

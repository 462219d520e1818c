import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

@Suite(.tags(.unit)) struct ReportTests {
    @Test func timeAxisUsesRoundUTCTimesAndDatesAtDayStarts() {
        let t0: Int64 = 1_767_225_600_000 + 7 * 60_000  // 2026-01-01T00:07Z
        let three = ReportHTML.timeAxisTicks(from: t0, to: t0 + 3 * 3_600_000)
        #expect(three.count == 12 && three.first?.label == "00:15" && three.last?.label == "03:00")
        let day = ReportHTML.timeAxisTicks(from: t0 - 7 * 60_000 - 3_600_000, to: t0 + 20 * 3_600_000)
        #expect(day.map(\.label).contains("01-01 00:00"), "a day's start carries its date: \(day.map(\.label))")
        #expect(day.count <= 12)
        let week = ReportHTML.timeAxisTicks(from: t0, to: t0 + 7 * 86_400_000)
        #expect(week.allSatisfy { $0.label.count == 11 }, "days apart: every label has its date")
    }
}

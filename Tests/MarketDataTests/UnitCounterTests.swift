import Engine
import Testing

@testable import MarketData

@Suite(.tags(.unit)) struct UnitCounterTests {
    /// The plain-digits path gives the general parse's count wherever it answers, and leaves everything else to it.
    @Test func thePlainDigitsPathAgreesWithTheExactDecimal() {
        let units = ["0.1", "0.001", "1", "0.01", "0.5", "0.0001"].map { ScaledDecimal($0)! }
        var fields = [
            "0", "5", "5.", ".5", "0.1", "50000.1", "50000.10", "50000.05", "0.001", "0.0005", "1.2345", "007.50",
            "-1.5", "+2", "1e3", "1.5e-1", "", ".", "1..2", "12a", "999999999999999999", "9999999999999999999",
            "922337203685477580.7", "0.0000000000000000001",
        ]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let whole = UInt64.random(in: 0..<1_000_000, using: &random)
            let decimals = Int.random(in: 0...5, using: &random)
            let fraction = (0..<decimals).map { _ in String(Int.random(in: 0...9, using: &random)) }.joined()
            fields.append(decimals == 0 ? "\(whole)" : "\(whole).\(fraction)")
        }
        /// The count as the readers take it: the number `Fields` read on its way through the line.
        func count(_ counter: UnitCounter, _ bytes: [UInt8]) -> Int64? {
            let fields = Fields()
            fields.want(1)
            _ = bytes.withUnsafeBufferPointer { fields.split($0) }
            return counter.count(fields.number(0))
        }
        var answered = 0
        for unit in units {
            let counter = UnitCounter(unit)
            for text in fields {
                let bytes = Array(text.utf8)
                let fast = count(counter, bytes)
                let exact = bytes.withUnsafeBufferPointer { ScaledDecimal.parse($0) }.flatMap { $0.count(of: unit) }
                if let fast {
                    answered += 1
                    #expect(fast == exact, "\(text) in units of \(unit)")
                }
            }
        }
        // It answers for the exchange's units (mantissa 1), not for a unit of 0.5.
        #expect(answered > 2000)
        #expect(count(UnitCounter(ScaledDecimal("0.5")!), Array("12.5".utf8)) == nil)
    }
}

import Engine
import Testing

@Suite(.tags(.unit)) struct DecimalTests {
    @Test func parsesPlainAndExponentForms() {
        #expect(ScaledDecimal("50000.1") == ScaledDecimal(mantissa: 500001, scale: 1))
        #expect(ScaledDecimal("0.001") == ScaledDecimal(mantissa: 1, scale: 3))
        #expect(ScaledDecimal("-12.500") == ScaledDecimal(mantissa: -125, scale: 1))
        #expect(ScaledDecimal("3") == ScaledDecimal(mantissa: 3, scale: 0))
        #expect(ScaledDecimal("1.5e-3") == ScaledDecimal(mantissa: 15, scale: 4))
        #expect(ScaledDecimal("2E2") == ScaledDecimal(mantissa: 200, scale: 0))
        #expect(ScaledDecimal("abc") == nil)
        #expect(ScaledDecimal("1.2.3") == nil)
        #expect(ScaledDecimal("") == nil)
        #expect(ScaledDecimal("-") == nil)
    }

    @Test func ticksRoundHalvesAwayFromZero() {
        #expect(px("50000.05") == 500_001)
        #expect(px("50000.04") == 500_000)
        #expect(px("50000.15") == 500_002)
        #expect(btc.ticks(ScaledDecimal("-0.05")!) == -1)
        #expect(sz("0.0005") == 1)
        #expect(sz("0.0004") == 0)
        #expect(sz("1.2345") == 1235)
    }

    @Test func pricesFormatShortest() {
        #expect(formatNumber(btc.price(500_001)) == "50000.1")
        #expect(formatNumber(btc.price(500_000)) == "50000")
        #expect(formatNumber(btc.size(1)) == "0.001")
        #expect(formatNumber(btc.price(1_000_001, over: 2)) == "50000.05")
        #expect(formatNumber(-0.0) == "0")
        #expect(formatScaled(500001, scale: 1) == "50000.1")
        #expect(formatScaled(5, scale: 3) == "0.005")
        #expect(formatScaled(-5, scale: 3) == "-0.005")
    }

    @Test func minuteOfEventFloors() {
        #expect(minuteStart(of: t0 + 59_999) == t0)
        #expect(minuteStart(of: t0 + 60_000) == t0 + 60_000)
        #expect(minuteStart(of: -1) == -60_000)
        #expect(roundedDiv(5, 2) == 3)
        #expect(roundedDiv(-5, 2) == -3)
        #expect(roundedDiv(7, 3) == 2)
    }
}

import Foundation
import Testing

@testable import Charts

/// The chart library the agent serves is the vendored file, byte for byte, at the hash recorded beside it
/// (vendor/lightweight-charts/README.md); its license and notice are kept.
@Suite(.tags(.unit)) struct ChartLibraryTests {
    let dir = packageRoot.appending(path: "vendor/lightweight-charts")

    @Test func theServedScriptIsTheVendoredFileAtItsRecordedHash() throws {
        let file = try Data(contentsOf: dir.appending(path: "lightweight-charts.js"))
        #expect(Data(ChartLibrary.script.utf8) == file, "regenerate with scripts/fetch-lightweight-charts")
        let sums = try String(contentsOf: dir.appending(path: "SHA256SUMS"), encoding: .utf8)
        #expect(sums == "\(ChartLibrary.sha256)  lightweight-charts.js\n")
        let hash = Process()
        hash.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        hash.arguments = [dir.appending(path: "lightweight-charts.js").path]
        let out = Pipe()
        hash.standardOutput = out
        try hash.run()
        hash.waitUntilExit()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.hasPrefix(ChartLibrary.sha256 + " "), "\(printed)")
        // The build's own license header, the license and the attribution are kept.
        #expect(
            ChartLibrary.script.hasPrefix(
                "/*!\n * @license\n * TradingView Lightweight Charts™ v\(ChartLibrary.version)"))
        let license = try String(contentsOf: dir.appending(path: "LICENSE"), encoding: .utf8)
        #expect(license.contains("Apache License") && license.contains("Version 2.0"))
        let notice = try String(contentsOf: dir.appending(path: "NOTICE"), encoding: .utf8)
        #expect(notice.contains("TradingView, Inc."))
    }
}

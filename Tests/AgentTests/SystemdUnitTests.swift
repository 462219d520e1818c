import Foundation
import Testing

/// The unit files pass `systemd-analyze verify` and rate at most 2.0 in `systemd-analyze security --offline=true`.
/// ExecStart points at the built binary in the copies checked (verify wants an executable there).
@Suite(.tags(.e2e), .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
struct SystemdUnitTests {
    func copy(_ unit: String, as name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let text = try String(contentsOf: packageRoot.appendingPathComponent("systemd/\(unit)"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/auction-agent", with: agentBinary().path)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func analyze(_ arguments: [String]) throws -> Run { try runProcess("/usr/bin/systemd-analyze", arguments) }

    @Test(arguments: [
        ("auction-agent.service", "auction-agent.service"), ("auction-agent@.service", "auction-agent@paper.service"),
        ("auction-recorder@.service", "auction-recorder@paper.service"),
    ])
    func verifiesAndRatesAtMostTwo(unit: String, name: String) throws {
        let path = try copy(unit, as: name)
        let verify = try analyze(["verify", path])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stderr.isEmpty && verify.stdout.isEmpty, "verify says: \(verify.stdout)\(verify.stderr)")
        let security = try analyze(["security", "--offline=true", path])
        let line =
            (security.stdout + security.stderr).split(separator: "\n").first { $0.contains("Overall exposure level") }
            ?? ""
        let score = line.split(separator: ":").last.flatMap {
            Double($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        let value = try #require(score, "no score in: \(security.stdout)")
        #expect(value <= 2.0, "\(line)")
    }
}

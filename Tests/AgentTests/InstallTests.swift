import Foundation
import Testing

/// `scripts/install` into a temporary root: the files an operator expects, with their permissions; a second install
/// keeps the operator's edits; uninstall removes the program and keeps configuration and secrets.
@Suite(.tags(.e2e)) struct InstallTests {
    func install(_ root: String, _ args: [String] = []) throws -> Run {
        try runProcess(
            "/bin/bash", [packageRoot.appendingPathComponent("scripts/install").path] + args,
            environment: ["DESTDIR": root, "BUILD_DIR": agentBinary().deletingLastPathComponent().path])
    }

    func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
    }

    @Test func installsTheExpectedFilesWithTheirPermissions() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("root-\(UUID().uuidString.prefix(8))")
            .path
        let run = try install(root)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("systemctl enable --now auction-agent"))
        let expected: [(String, Int)] = [
            ("usr/local/bin/auction-agent", 0o755), ("usr/local/bin/atctl", 0o755),
            ("etc/systemd/system/auction-agent.service", 0o644), ("etc/systemd/system/auction-agent@.service", 0o644),
            ("etc/systemd/system/auction-recorder@.service", 0o644),
            ("etc/sysusers.d/auction-agent.conf", 0o644), ("etc/tmpfiles.d/auction-agent.conf", 0o644),
            ("etc/auction-agent", 0o750), ("etc/auction-agent/environments", 0o750),
            ("etc/auction-agent/agent.env", 0o600),
            ("etc/auction-agent/environments/sim.yaml", 0o640), ("etc/auction-agent/environments/live.yaml", 0o640),
            ("etc/auction-agent/environments/backtest.yaml", 0o640),
            ("usr/local/share/doc/auction-agent/README.md", 0o644),
            ("usr/local/share/doc/auction-agent/runbooks/agent.md", 0o644),
            ("usr/local/share/doc/auction-agent/runbooks/recorder.md", 0o644),
        ]
        for (path, m) in expected {
            #expect(mode("\(root)/\(path)") == m, "\(path): \(String(mode("\(root)/\(path)") ?? -1, radix: 8))")
        }
        // Installed as root:root (a package build): tmpfiles gives the files to the service's group at boot.
        let tmpfiles = try String(contentsOfFile: "\(root)/etc/tmpfiles.d/auction-agent.conf", encoding: .utf8)
        #expect(tmpfiles.contains("z /etc/auction-agent/environments/*.yaml 0640 root auction -"))
        // The operator's edits survive a second install; new examples land beside them.
        let env = "\(root)/etc/auction-agent/agent.env"
        try "AUCTION_ENV=paper\n".write(toFile: env, atomically: false, encoding: .utf8)
        try "# edited\n".write(
            toFile: "\(root)/etc/auction-agent/environments/paper.yaml", atomically: false, encoding: .utf8)
        #expect(try install(root).status == 0)
        #expect(try String(contentsOfFile: env, encoding: .utf8) == "AUCTION_ENV=paper\n")
        #expect(
            try String(contentsOfFile: "\(root)/etc/auction-agent/environments/paper.yaml", encoding: .utf8)
                == "# edited\n")
        #expect(FileManager.default.fileExists(atPath: "\(root)/etc/auction-agent/environments/paper.yaml.example"))
        // Uninstall: the program goes, configuration and secrets stay.
        #expect(try install(root, ["--uninstall"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(root)/usr/local/bin/auction-agent"))
        #expect(!FileManager.default.fileExists(atPath: "\(root)/etc/systemd/system/auction-agent.service"))
        #expect(FileManager.default.fileExists(atPath: env))
    }
}

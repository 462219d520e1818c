import ControlProtocol
import Engine
import Foundation
import GRDB
import Testing

@testable import Daemon

/// The storage faults an operator meets, through the real executables (docs/OPERATIONS.md, "Storage faults";
/// runbooks/backup-and-restore.md): a backup taken while the sim agent trades, restored under a new agent; a
/// damaged database refused at start.
@Suite(.tags(.e2e), .serialized) struct StorageEndToEndTests {
    @Test func aBackupTakenWhileTheAgentTradesRestoresUnderANewAgent() throws {
        let agent = try AgentProcess()
        defer { try? FileManager.default.removeItem(at: agent.directory) }
        try agent.start(env: "sim", quickSim + ["--set", "agent.require_manual_activation=false"])
        #expect(agent.waitForState("active"), "\(agent.log.suffix(2_000))")
        let copy = agent.directory.appending(path: "agent-backup.sqlite").path
        let run = try runProcess(
            agentBinary().path, ["backup", "--env", "sim", "--state-dir", agent.stateDir, "--out", copy])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("quick_check ok") && run.stdout.contains("last snapshot 20"), "\(run.stdout)")
        #expect(agent.status()?.state == "active", "the agent went on trading")
        let again = try runProcess(
            agentBinary().path, ["backup", "--env", "sim", "--state-dir", agent.stateDir, "--out", copy])
        #expect(again.status != 0 && again.stderr.contains("exists"), "an existing file is never overwritten")
        #expect(agent.terminate() == 0)

        let q = try DatabaseQueue(path: copy)
        #expect(try q.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") } == ["ok"])
        try q.close()

        // Restored as another agent's state: it recovers from the copy's snapshot.
        let restored = try AgentProcess()
        defer { try? FileManager.default.removeItem(at: restored.directory) }
        try FileManager.default.createDirectory(atPath: restored.stateDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: copy, toPath: restored.stateDir + "/agent.sqlite")
        try restored.start(env: "sim", quickSim + ["--set", "agent.require_manual_activation=false"])
        #expect(restored.waitForState("active"), "\(restored.log.suffix(2_000))")
        let recovered = restored.events("agent.recovered").first?["message"] as? String ?? ""
        #expect(recovered.contains("snapshot"), "\(recovered)")
        #expect(restored.terminate() == 0)
    }

    @Test func aDamagedDatabaseIsRefusedAtStartNamingTheFileAndTheRunbook() throws {
        let agent = try AgentProcess()
        defer { try? FileManager.default.removeItem(at: agent.directory) }
        let store = try AgentStore(directory: agent.stateDir, instrument: .btcusdt)
        try store.writeRaw(
            trades: (0..<5_000).map { TradeEvent(ts: Int64($0), price: 500_000, size: 1, side: .buy) }, quotes: [])
        store.checkpointLater()
        store.flushRaw()
        let path = store.path
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 3 * 4096)
        handle.write(Data(repeating: 0xA5, count: 8 * 4096))
        try handle.close()
        try agent.start(env: "sim", quickSim)
        agent.process.waitUntilExit()
        #expect(agent.process.terminationStatus != 0)
        #expect(agent.log.contains(path) && agent.log.contains("runbooks/backup-and-restore.md"), "\(agent.log)")
    }
}

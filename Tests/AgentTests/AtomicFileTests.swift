import AgentSupport
import Foundation
import Testing

@Suite(.tags(.unit)) struct AtomicFileTests {
    @Test func partsAppearTogetherAtTheCommitAndAFileLetGoOfLeavesTheOldOne() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out.csv").path
        try "old\n".write(toFile: path, atomically: true, encoding: .utf8)
        func names() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

        // Written in parts: the old file stands until the commit, then the whole new one.
        let file = try AtomicFile(path: path)
        try file.write("a,b\n")
        try file.write(Array("1,2\n".utf8))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old\n")
        #expect(try names().count == 2)
        try file.commit()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "a,b\n1,2\n")
        #expect(try names() == ["out.csv"])
        #expect(throws: (any Error).self) { try file.write("late\n") }

        // A run that fails lets go of its file before the commit: nothing of it is left.
        do {
            let abandoned = try AtomicFile(path: path)
            try abandoned.write("half a run\n")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "a,b\n1,2\n")
        #expect(try names() == ["out.csv"])

        // A directory that is not there is named at the start, not after the run.
        #expect(throws: (any Error).self) { _ = try AtomicFile(path: dir.appendingPathComponent("no/out.csv").path) }
    }
}

import Foundation
import Testing

/// The repository explains itself: every citation of the project's reference documents (docs/SPEC.md,
/// docs/DESIGN.md, docs/BYBIT.md) in the sources, tests, docs, runbooks and configuration points at a document and a
/// section that exist, and none cites them by a bare name that resolves nowhere.
@Suite(.tags(.unit)) struct DocsTests {
    static let references = ["SPEC", "DESIGN", "BYBIT"]

    var citingFiles: [(path: String, text: String)] {
        get throws {
            var out: [(String, String)] = []
            let fm = FileManager.default
            for top in [
                "Sources", "Tests", "docs", "runbooks", "config", "monitoring", "systemd", "scripts", "README.md",
                "Makefile",
            ] {
                let url = packageRoot.appending(path: top)
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory) else { continue }
                let paths =
                    isDirectory.boolValue
                    ? (fm.enumerator(atPath: url.path)?.compactMap { $0 as? String }.map { "\(top)/\($0)" } ?? [])
                    : [top]
                let kinds = [".swift", ".md", ".yaml", ".yml", ".conf", ".service"]
                for path in paths
                where kinds.contains(where: path.hasSuffix) || path == "Makefile" || path.hasPrefix("scripts/") {
                    guard let text = try? String(contentsOf: packageRoot.appending(path: path), encoding: .utf8) else {
                        continue
                    }
                    out.append((path, text))
                }
            }
            return out
        }
    }

    func document(_ name: String) throws -> String {
        try String(contentsOf: packageRoot.appending(path: "docs/\(name).md"), encoding: .utf8)
    }

    @Test func specSectionsCitedExist() throws {
        let spec = try document("SPEC")
        let sections = Set(spec.matches(of: /\n## (\d+)\./).map { Int($0.output.1)! })
        #expect(sections == Set(1...12))
        var cited = 0
        for (path, text) in try citingFiles {
            for m in text.matches(of: /docs\/SPEC\.md §(\d+)(?:[–-]§?(\d+))?/) {
                cited += 1
                for n in [m.output.1, m.output.2].compactMap({ $0 }).compactMap({ Int($0) }) {
                    #expect(sections.contains(n), "\(path): docs/SPEC.md §\(n) does not exist")
                }
            }
        }
        #expect(cited > 50, "the code cites the rules it implements")
    }

    @Test func namedSectionsCitedExist() throws {
        var headings: [String: [String]] = [:]
        for name in Self.references {
            headings[name] = try document(name).split(separator: "\n").filter { $0.hasPrefix("#") }
                .map { $0.drop { $0 == "#" || $0 == " " }.lowercased() }
        }
        for (path, text) in try citingFiles {
            // docs/DESIGN.md, "Modes", "States" / docs/BYBIT.md "WebSocket streams" / docs/DESIGN.md ("Dependencies")
            for m in text.matches(of: /docs\/(SPEC|DESIGN|BYBIT)\.md,? \(?((?:"[^"\n]+"(?:,? (?:and )?)?)+)/) {
                let name = String(m.output.1)
                for title in m.output.2.matches(of: /"([^"\n]+)"/).map({ String($0.output.1).lowercased() }) {
                    #expect(
                        headings[name]!.contains { $0.hasPrefix(title) },
                        "\(path): docs/\(name).md has no section \"\(title)\"")
                }
            }
        }
    }

    /// A citation by a bare name ("SPEC §3", "BYBIT.md", "(DESIGN, Modes)") resolves nowhere for a reader of the
    /// repository; they all say docs/NAME.md.
    @Test func noBareCitations() throws {
        for (path, text) in try citingFiles where !path.hasSuffix("DocsTests.swift") {
            for m in text.matches(of: /(^|[^\/\w])(SPEC|DESIGN|BYBIT)(\.md| §|, |: )/.anchorsMatchLineEndings()) {
                Issue.record("\(path): bare citation '\(text[m.range])'; write docs/\(m.output.2).md")
            }
        }
    }
}

/// Habits the repository keeps (docs/DESIGN.md, "Tests").
@Suite(.tags(.unit)) struct HabitsTests {
    /// Every suite says what it needs (`.unit`, `.integration`, `.e2e`), so `make test-fast` can run the unit ones.
    @Test func everySuiteIsTagged() throws {
        let tests = packageRoot.appending(path: "Tests")
        let files =
            FileManager.default.enumerator(atPath: tests.path)?.compactMap { $0 as? String }.filter {
                $0.hasSuffix(".swift")
            } ?? []
        var suites = 0
        for file in files {
            let text = try String(contentsOf: tests.appending(path: file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("@Suite") {
                suites += 1
                #expect(line.contains(".tags(."), "Tests/\(file): \(line)")
            }
        }
        #expect(suites > 50)
    }
}

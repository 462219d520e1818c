import Foundation
import Testing
import Yams

/// The Kubernetes manifest of a sharded grid, read as the cluster reads it: the Indexed Job's completions agree with
/// the N of `--shard auto/N` and the merge's GRID_SHARDS, and each container's shell command, run here with its
/// JOB_COMPLETION_INDEX and the shared volume as a temporary directory, gives the merged results of a single grid.
/// (The Slurm scripts run under a real Slurm in `make cluster-e2e`.)
@Suite(.tags(.e2e)) struct ClusterDeployTests {
    struct Container {
        var script: String
        var env: [String: String]
    }

    func containers(_ yaml: String) throws -> (shards: Container, completions: Int, merge: Container) {
        var jobs: [String: Node.Mapping] = [:]
        for document in try Yams.compose_all(yaml: yaml) {
            guard case .mapping(let job) = document, job["kind"]?.string == "Job",
                case .mapping(let metadata)? = job["metadata"], let name = metadata["name"]?.string,
                case .mapping(let spec)? = job["spec"]
            else { continue }
            jobs[name] = spec
        }
        func container(_ spec: Node.Mapping?) throws -> Container {
            guard case .mapping(let template)? = spec?["template"], case .mapping(let pod)? = template["spec"],
                case .sequence(let list)? = pod["containers"], case .mapping(let c)? = list.first,
                case .sequence(let command)? = c["command"], command.map(\.string) == ["/bin/sh", "-c"],
                case .sequence(let args)? = c["args"], let script = args.first?.string
            else { throw ManifestError("a Job without a /bin/sh -c container") }
            var env: [String: String] = [:]
            if case .sequence(let vars)? = c["env"] {
                for v in vars {
                    if case .mapping(let m) = v, let n = m["name"]?.string, let value = m["value"]?.string {
                        env[n] = value
                    }
                }
            }
            return Container(script: script, env: env)
        }
        let shards = jobs["auction-grid"]
        guard shards?["completionMode"]?.string == "Indexed", let completions = shards?["completions"]?.int,
            shards?["parallelism"]?.int == completions
        else { throw ManifestError("auction-grid is not an Indexed Job with parallelism = completions") }
        return (try container(shards), completions, try container(jobs["auction-grid-merge"]))
    }

    struct ManifestError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    @Test func theKubernetesJobsShardAndMergeLikeOneGrid() throws {
        let text = try String(
            contentsOf: packageRoot.appendingPathComponent("deploy/kubernetes/grid-job.yaml"), encoding: .utf8)
        let (shard, completions, merge) = try containers(text)
        #expect(shard.script.contains("--shard auto/\(completions)"), "the N of auto/N is the Job's completions")
        #expect(merge.env["GRID_SHARDS"] == String(completions))

        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let research = root.appendingPathComponent("research")
        let data = research.appendingPathComponent("data")
        _ = try agent(["simulate", "--hours", "2", "--seed", "4", "--out", data.path])
        for kind in ["trades", "quotes"] {
            try FileManager.default.createDirectory(
                at: data.appendingPathComponent(kind), withIntermediateDirectories: true)
            try FileManager.default.moveItem(
                at: data.appendingPathComponent("\(kind).csv"),
                to: data.appendingPathComponent("\(kind)/BTCUSDT2026-01-01.csv"))
        }
        try "parameters:\n  value_area.va_fraction: [0.68, 0.72]\n  sizing.risk_pct: [0.01, 0.02, 0.03]\n"
            .write(to: research.appendingPathComponent("grid.yaml"), atomically: true, encoding: .utf8)
        // The configuration the pods would read: a 60-minute window so that two hours trade.
        let config = root.appendingPathComponent("config")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try "value_area:\n  rolling_window_minutes: 60\n  warmup_minutes: 60\n  min_va_bins: 10\n"
            .write(to: config.appendingPathComponent("backtest.yaml"), atomically: true, encoding: .utf8)
        let pathEnv = "\(agentBinary().deletingLastPathComponent().path):/usr/bin:/bin"
        func sh(_ script: String, _ env: [String: String]) throws -> Run {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", script.replacingOccurrences(of: "/research", with: research.path)]
            p.environment = env.merging(
                ["PATH": pathEnv, "AUCTION_CONFIG_DIR": config.path]) { $1 }
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return Run(status: p.terminationStatus, stdout: "", stderr: stderr)
        }
        for index in 0..<completions {
            let run = try sh(shard.script, shard.env.merging(["JOB_COMPLETION_INDEX": String(index)]) { $1 })
            #expect(run.status == 0, "index \(index): \(run.stderr)")
        }
        let merged = try sh(merge.script, merge.env)
        #expect(
            merged.status == 0 && merged.stderr.contains("\(completions) of \(completions) shards"), "\(merged.stderr)")
        let single = try agent(
            [
                "grid", "--trades", data.appendingPathComponent("trades").path, "--quotes",
                data.appendingPathComponent("quotes").path, "--grid", research.appendingPathComponent("grid.yaml").path,
                "--out", root.appendingPathComponent("single").path,
            ], environment: ["AUCTION_CONFIG_DIR": config.path])
        #expect(single.status == 0, "\(single.stderr)")
        let a = FileManager.default.contents(atPath: root.appendingPathComponent("single/results.csv").path)
        let b = FileManager.default.contents(atPath: research.appendingPathComponent("out/merged/results.csv").path)
        #expect(a != nil && a == b)
        // Without shard 3 the merge Job fails, naming it.
        try FileManager.default.removeItem(at: research.appendingPathComponent("out/shard-3"))
        let partial = try sh(merge.script, merge.env)
        #expect(partial.status == 3 && partial.stderr.contains("missing shard 3/\(completions)"), "\(partial.stderr)")
    }
}

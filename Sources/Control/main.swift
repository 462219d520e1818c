import ArgumentParser

/// `atctl`: the operator's client of the agent's control socket.
@main
struct ATCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atctl",
        abstract: "Operator's client of the auction-agent control socket.",
        discussion: """
            This build of atctl knows one command, `version`. The control commands (status, flatten, pause, \
            resume, ...) ship together with the agent's control server; until then there is no agent socket \
            to talk to, and atctl offers no command that would pretend otherwise.
            """,
        version: atctlVersion,
        subcommands: [Version.self]
    )
}

let atctlVersion = "0.1.0"

extension ATCtl {
    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print atctl's version.")
        func run() {
            print("atctl \(atctlVersion)")
        }
    }
}

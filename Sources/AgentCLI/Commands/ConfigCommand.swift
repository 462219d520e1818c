import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Foundation
import Research

/// `auction-agent config`: configuration tools.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Configuration tools.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate an environment's configuration and print the effective values (also: config show).",
            discussion: """
                Exits 0 and prints every parameter with its value and origin (file line, the file it extends, \
                --set or default) when the configuration is valid; otherwise prints the file, line and key at fault \
                and exits 1. --diff prints only what differs from the built-in defaults (backtest.yaml). An \
                environment file may start with `extends: backtest` and hold only what differs. Secrets are never \
                printed.
                """,
            aliases: ["show"]
        )

        @OptionGroup var config: ConfigOptions

        @Flag(help: "Only the parameters that differ from the built-in defaults (backtest.yaml).")
        var diff = false

        func run() throws {
            let resolved = try ConfigLoader.load(config.selection)
            print(ConfigLoader.render(resolved, differencesOnly: diff), terminator: "")
        }
    }
}

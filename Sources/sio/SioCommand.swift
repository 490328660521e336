import ArgumentParser
import SioPluginHost

@main
struct SioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sio",
        abstract: "A Socket.IO server whose application logic lives in handler plugins.",
        subcommands: [ServeCommand.self, BroadcastCommand.self, SendCommand.self, PluginsCommand.self, ReloadCommand.self, ProbePluginCommand.self],
        defaultSubcommand: nil
    )
}

/// The child side of `PluginProbe`: maps one file and exits. Not for people.
struct ProbePluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-plugin", abstract: "Map a plugin file in this process and exit (used by the server).",
        shouldDisplay: false)

    @Argument var path: String

    func run() throws {
        PluginProbe.childMain(path: path)
    }
}

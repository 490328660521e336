import ArgumentParser

@main
struct SioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sio",
        abstract: "A Socket.IO server whose application logic lives in handler plugins.",
        subcommands: [ServeCommand.self, BroadcastCommand.self, SendCommand.self, PluginsCommand.self, ReloadCommand.self],
        defaultSubcommand: nil
    )
}

import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import SioPluginHost

@main
struct SioCommand: AsyncParsableCommand {
    static let version = "0.2.0"

    static let configuration = CommandConfiguration(
        commandName: "sio",
        abstract: "A Socket.IO server whose application logic lives in handler plugins.",
        version: "sio \(version) (plugin ABI \(SioABI.major).\(SioABI.minor))",
        subcommands: [ServeCommand.self, BroadcastCommand.self, SendCommand.self, PluginsCommand.self, ReloadCommand.self,
                      SocketsCommand.self, ChannelsCommand.self, PresenceCommand.self, StatsCommand.self, CheckPluginCommand.self, NewPluginCommand.self,
                      ProbePluginCommand.self, PluginRunnerCommand.self],
        defaultSubcommand: nil
    )

    /// Argument errors are ArgumentParser's (with the usage); every failure at run time is one
    /// line, `sio: REASON`, and a non-zero exit status.
    static func main() async {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var command = command
                try command.run()
            }
        } catch let error where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // Help, version, exit codes and validation: ArgumentParser says those its own way.
            exit(withError: error)
        } catch {
            FileHandle.standardError.write(Data("sio: \(oneLine(error))\n".utf8))
            Foundation.exit(1)
        }
    }

    /// A reason for one line: an errno from NIO as its text, anything else up to its first line.
    static func oneLine(_ error: Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first { return oneLine(first.error) }
        return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
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

/// The child side of isolated mode: hosts one plugin for the server on the socket `fd`. Not
/// for people.
struct PluginRunnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin-runner", abstract: "Host one plugin for a server in isolated mode (used by the server).",
        shouldDisplay: false)

    @Option var fd: Int32

    func run() throws {
        RunnerProcess.main(fd: fd)
    }
}

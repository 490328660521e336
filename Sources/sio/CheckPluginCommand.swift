import ArgumentParser
import Foundation
import SioPluginHost
import SocketIOCodec

/// `sio check-plugin FILE`: what a server would make of a plugin build, before it is deployed.
///
/// The plugin's `init` runs, so the check runs in a child process (this command with
/// `--in-this-process`): a build that crashes while loading or initialising is reported as
/// refused, with the signal, instead of taking the command down.
struct CheckPluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-plugin",
        abstract: "Inspect a built plugin without serving it: ABI version, name, version, handlers and patterns, or why it would be refused.")

    @Argument(help: "The plugin file (.so).") var file: String
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: .hidden) var inThisProcess = false

    func run() throws {
        let path = URL(fileURLWithPath: file).standardizedFileURL.path
        if inThisProcess {
            let probe = ServeCommand.executablePath.map { PluginProbe(command: [$0, "probe-plugin"]) }
            print(Self.json(PluginHost.inspect(file: path, probe: probe)).jsonText)
            return
        }
        let result = try inspectInChild(path)
        if json {
            print(result.jsonText)
        } else {
            print(Self.text(result))
        }
        if result["outcome"]?.stringValue != "loaded" { throw ExitCode(1) }
    }

    private func inspectInChild(_ path: String) throws -> JSONValue {
        guard let executable = ServeCommand.executablePath else { throw ValidationError("cannot find the sio executable") }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["check-plugin", "--in-this-process", path]
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        if child.terminationReason == .uncaughtSignal {
            let signal = child.terminationStatus
            let name = strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
            return ["file": .string(path),
                    "outcome": .string("refused: the plugin crashed the check while loading or initialising (\(name), signal \(signal))")]
        }
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard let result = try? JSONValue(parsing: Array(line.utf8)) else {
            return ["file": .string(path), "outcome": .string("refused: the check exited with status \(child.terminationStatus) and no answer")]
        }
        return result
    }

    private static func json(_ report: PluginLoadReport) -> JSONValue {
        switch report.outcome {
        case .loaded(let plugin), .reloaded(let plugin), .unchanged(let plugin):
            return [
                "file": .string(report.file), "outcome": .string("loaded"), "name": .string(plugin.name),
                "version": .string(plugin.version), "abi": .string(plugin.abi),
                "handlers": .array(plugin.handlers.map { ["event": .string($0.event), "pattern": $0.pattern.map(JSONValue.string) ?? .null] }),
            ]
        case .removed, .refused:
            return ["file": .string(report.file), "outcome": .string(report.outcome.summary)]
        }
    }

    private static func text(_ result: JSONValue) -> String {
        let file = result["file"]?.stringValue ?? "?"
        guard result["outcome"]?.stringValue == "loaded" else {
            return "\(file): \(result["outcome"]?.stringValue ?? "refused")"
        }
        var lines = ["\(result["name"]?.stringValue ?? "?") \(result["version"]?.stringValue ?? "?")  ABI \(result["abi"]?.stringValue ?? "?")  \(file)"]
        for handler in result["handlers"]?.arrayValue ?? [] {
            let pattern = handler["pattern"]?.stringValue.map { "  channel \($0)" } ?? ""
            lines.append("  \(handler["event"]?.stringValue ?? "?")\(pattern)")
        }
        lines.append("would load")
        return lines.joined(separator: "\n")
    }
}

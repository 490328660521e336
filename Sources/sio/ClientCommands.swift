import ArgumentParser
import Foundation
import NIOHTTP1
import SocketIOCodec

/// Where the client commands find the running server.
struct AdminOptions: ParsableArguments {
    @Option(help: "The server's admin endpoint, HOST:PORT (default $SIO_ADMIN_URL or 127.0.0.1:8001).")
    var admin: String?

    @Option(help: "The admin token, when the server requires one (default $SIO_ADMIN_TOKEN).")
    var token: String?

    func client() throws -> AdminClient {
        let environment = ProcessInfo.processInfo.environment
        return try AdminClient(url: admin ?? environment["SIO_ADMIN_URL"] ?? "127.0.0.1:8001",
                               token: token ?? environment["SIO_ADMIN_TOKEN"])
    }
}

/// Exits non-zero with the server's one-line reason when the call did not succeed.
func expectSuccess(_ status: Int, _ body: JSONValue) throws {
    guard (200..<300).contains(status) else {
        FileHandle.standardError.write(Data("sio: \(body["error"]?.stringValue ?? "request failed with HTTP \(status)")\n".utf8))
        throw ExitCode(status == 404 ? 2 : 1)
    }
}

/// The message argument: JSON when it parses as JSON and `--text` is not given, else a string.
func messageValue(_ message: String, text: Bool) -> JSONValue {
    if !text, let value = try? JSONValue(parsing: message) { return value }
    return .string(message)
}

struct BroadcastCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broadcast", abstract: "Send a message to every socket, or to a channel's subscribers.")

    @OptionGroup var adminOptions: AdminOptions
    @Option(help: "Only the subscribers of this channel.") var channel: String?
    @Option(help: "The namespace.") var namespace: String = "/"
    @Flag(help: "Send MESSAGE as a string even if it parses as JSON.") var text = false
    @Argument(help: "The message: JSON, or a plain string.") var message: String

    func run() async throws {
        var body: [(String, JSONValue)] = [("namespace", .string(namespace)), ("message", messageValue(message, text: text))]
        if let channel { body.append(("channel", .string(channel))) }
        let (status, reply) = try await adminOptions.client().request(.POST, "/broadcast", body: .object(body))
        try expectSuccess(status, reply)
        print("delivered to \(reply["delivered"]?.intValue ?? 0) socket(s)")
    }
}

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send", abstract: "Send a message to one socket.")

    @OptionGroup var adminOptions: AdminOptions
    @Option(help: "The namespace.") var namespace: String = "/"
    @Flag(help: "Send MESSAGE as a string even if it parses as JSON.") var text = false
    @Argument(help: "The socket id (the client's socket.id).") var sessionID: String
    @Argument(help: "The message: JSON, or a plain string.") var message: String

    func run() async throws {
        let body: JSONValue = .object([
            ("namespace", .string(namespace)), ("session_id", .string(sessionID)), ("message", messageValue(message, text: text)),
        ])
        let (status, reply) = try await adminOptions.client().request(.POST, "/send", body: body)
        try expectSuccess(status, reply)
        print("delivered")
    }
}

struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plugins", abstract: "List the loaded plugins and their handlers.")

    @OptionGroup var adminOptions: AdminOptions
    @Flag(help: "Print the JSON as the server sent it.") var json = false

    func run() async throws {
        let (status, reply) = try await adminOptions.client().request(.GET, "/plugins")
        try expectSuccess(status, reply)
        if json {
            print(reply.jsonText)
            return
        }
        for plugin in reply["plugins"]?.arrayValue ?? [] {
            guard let name = plugin["name"]?.stringValue else {
                // A file the last reload refused: not loaded, shown with why.
                print("\(plugin["file"]?.stringValue ?? "?")  not loaded: \(plugin["last_reload"]?["outcome"]?.stringValue ?? "?")")
                continue
            }
            let version = plugin["version"]?.stringValue ?? "?"
            let runner = plugin["runner"]?.stringValue.map { "  isolated: \($0)" } ?? ""
            print("\(name) \(version)  ABI \(plugin["abi"]?.stringValue ?? "?")  \(plugin["file"]?.stringValue ?? "")\(runner)")
            for handler in plugin["handlers"]?.arrayValue ?? [] {
                let pattern = handler["pattern"]?.stringValue.map { "  channel \($0)" } ?? ""
                print("  \(handler["event"]?.stringValue ?? "?")\(pattern)")
            }
        }
    }
}

struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload the plugins directory now; exits non-zero if any plugin was refused.")

    @OptionGroup var adminOptions: AdminOptions

    func run() async throws {
        let (status, reply) = try await adminOptions.client().request(.POST, "/reload")
        try expectSuccess(status, reply)
        var refused = false
        for plugin in reply["plugins"]?.arrayValue ?? [] {
            let outcome = plugin["outcome"]?.stringValue ?? "?"
            refused = refused || outcome.hasPrefix("refused")
            print("\(plugin["file"]?.stringValue ?? "?"): \(outcome)")
        }
        if refused { throw ExitCode(1) }
    }
}

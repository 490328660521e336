import ArgumentParser
import Foundation
import SocketIOCodec

/// `sio sockets`: who is connected, where from, over what, in which channels.
struct SocketsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockets", abstract: "List the connected sockets (of one channel with --channel).")

    @OptionGroup var adminOptions: AdminOptions
    @Option(help: "Only the subscribers of this channel.") var channel: String?
    @Flag(help: "Print the JSON as the server sent it.") var json = false

    func run() async throws {
        var path = "/sockets"
        if let channel {
            path += "?channel=" + (channel.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? channel)
        }
        let (status, reply) = try await adminOptions.client().request(.GET, path)
        try expectSuccess(status, reply)
        if json {
            print(reply.jsonText)
            return
        }
        let sockets = reply["sockets"]?.arrayValue ?? []
        var rows = [["ID", "NAMESPACE", "TRANSPORT", "ADDRESS", "CONNECTED", "CHANNELS"]]
        for socket in sockets {
            rows.append([
                socket["id"]?.stringValue ?? "?", socket["namespace"]?.stringValue ?? "?", socket["transport"]?.stringValue ?? "?",
                socket["remote_address"]?.stringValue ?? "?", socket["connected_at"]?.stringValue ?? "?",
                (socket["channels"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ","),
            ])
        }
        printTable(rows)
        print("\(sockets.count) socket(s)")
    }
}

/// `sio channels`: every channel with its member count.
struct ChannelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "channels", abstract: "List the channels and their member counts.")

    @OptionGroup var adminOptions: AdminOptions
    @Flag(help: "Print the JSON as the server sent it.") var json = false

    func run() async throws {
        let (status, reply) = try await adminOptions.client().request(.GET, "/channels")
        try expectSuccess(status, reply)
        if json {
            print(reply.jsonText)
            return
        }
        var rows = [["NAMESPACE", "CHANNEL", "MEMBERS"]]
        for channel in reply["channels"]?.arrayValue ?? [] {
            rows.append([channel["namespace"]?.stringValue ?? "?", channel["channel"]?.stringValue ?? "?",
                         channel["members"].map(\.jsonText) ?? "?"])
        }
        printTable(rows)
    }
}

/// `sio presence CHANNEL`: who is in a channel on every node of the cluster, with the value
/// each socket's plugin set.
struct PresenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presence", abstract: "List the sockets in a channel on every node, with their presence values.")

    @OptionGroup var adminOptions: AdminOptions
    @Argument(help: "The channel.") var channel: String
    @Option(help: "The namespace.") var namespace = "/"
    @Flag(help: "Print the JSON as the server sent it.") var json = false

    func run() async throws {
        let encode = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text }
        let (status, reply) = try await adminOptions.client().request(
            .GET, "/presence?channel=\(encode(channel))&namespace=\(encode(namespace))")
        try expectSuccess(status, reply)
        if json {
            print(reply.jsonText)
            return
        }
        var rows = [["ID", "NODE", "VALUE"]]
        for member in reply["members"]?.arrayValue ?? [] {
            rows.append([member["id"]?.stringValue ?? "?", member["node"]?.stringValue ?? "?", member["value"]?.stringValue ?? ""])
        }
        printTable(rows)
        print("\(reply["count"].map(\.jsonText) ?? "0") socket(s) in \(channel)")
    }
}

/// `sio stats`: sessions, sockets per namespace, and disconnects by reason, on one screen.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Sessions, sockets and disconnects by reason.")

    @OptionGroup var adminOptions: AdminOptions
    @Flag(help: "Print the JSON as the server sent it.") var json = false

    func run() async throws {
        let (status, reply) = try await adminOptions.client().request(.GET, "/stats")
        try expectSuccess(status, reply)
        if json {
            print(reply.jsonText)
            return
        }
        print("sessions  \(reply["sessions"].map(\.jsonText) ?? "?")")
        for (namespace, count) in Self.pairs(reply["sockets"]) {
            print("sockets   \(count.jsonText) in \(namespace)")
        }
        if let cluster = reply["cluster"], case .object = cluster {
            let peers = (cluster["peers"]?.arrayValue ?? []).compactMap(\.stringValue)
            print("cluster   node \(cluster["node"]?.stringValue ?? "?"), \(cluster["connected"]?.jsonText == "true" ? "connected" : "NOT connected to PostgreSQL"), "
                  + "\(peers.count) other node(s), \(cluster["remote_sockets"].map(\.jsonText) ?? "?") socket(s) on them")
        }
        let disconnects = Self.pairs(reply["disconnects"]).filter { $0.1.jsonText != "0" }
        print(disconnects.isEmpty ? "no disconnects yet" : "disconnects since start:")
        for (reason, count) in disconnects {
            print("  \(count.jsonText)  \(reason)")
        }
    }

    private static func pairs(_ value: JSONValue?) -> [(String, JSONValue)] {
        if case .object(let pairs)? = value { return pairs }
        return []
    }
}

/// Columns padded to their widest cell.
func printTable(_ rows: [[String]]) {
    guard let columns = rows.first?.count else { return }
    let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces))
    }
}

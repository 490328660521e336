import Foundation
import SioPlugin

/// The chat demo in Swift; behaviour and client protocol identical to Plugins/chat-c/chat.c
/// (see the comment at its top). Users are presence (a socket in a room's channel whose
/// presence value is its name), so with `sio serve --cluster` they span every node; rooms live
/// in the SDK's `PluginState`, which hands them to the next version on a reload.
private struct Room: Codable {
    var id: Int
    var name: String
}

/// The rooms this node knows, kept by the SDK and handed to the next version on a reload.
private struct Chat: Codable, Sendable {
    var rooms = [Room(id: 1, name: "Lobby")]
    var nextRoomID = 2
}

/// The names in a room on every node.
private func names(in room: Int, socket: Socket) throws -> [String] {
    try socket.presence(channel: "room-\(room)").compactMap(\.value)
}

/// Known here, or with people in it somewhere in the cluster.
private func roomExists(_ id: Int, in chat: Chat) -> Bool {
    chat.rooms.contains { $0.id == id } || ((try? Plugin.presenceCount(channel: "room-\(id)")) ?? 0) > 0
}

/// Drops HTML tags, tabs and newlines; trims; at most `limit` characters.
private func clean(_ text: Any?, limit: Int = 63) -> String {
    var out = ""
    var inTag = false
    for character in (text as? String) ?? "" {
        if character == "<" { inTag = true; continue }
        if character == ">" && inTag { inTag = false; continue }
        if inTag { continue }
        out.append(character == "\t" || character == "\n" || character == "\r" ? " " : character)
    }
    return String(out.trimmingCharacters(in: .whitespaces).prefix(limit))
}

private func roomID(ofChannel channel: String) -> Int? {
    guard channel.hasPrefix("room-") else { return nil }
    return Int(channel.dropFirst(5))
}

private struct ChatError: Error, CustomStringConvertible {
    let description: String
}

@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(name: "chat-swift", version: "1.2.0", state: Chat()) { on, chat in
        on.message { request, socket, context, message in
            guard message.ackID != nil else { return }
            try chat.withValue { chat in
                switch message.event {
                case "rooms":
                    let list = try chat.rooms.map { ["id": $0.id, "name": $0.name, "users": try names(in: $0.id, socket: socket)] as [String: Any] }
                    try socket.ack(message, list)
                case "create_room":
                    let name = clean(message.arguments.first)
                    if name.isEmpty {
                        try socket.ack(message, ["error": "a room needs a name"])
                    } else if chat.rooms.count >= 256 {
                        try socket.ack(message, ["error": "too many rooms"])
                    } else {
                        chat.rooms.append(Room(id: chat.nextRoomID, name: name))
                        chat.nextRoomID += 1
                        try socket.ack(message, ["id": chat.nextRoomID - 1])
                    }
                default:
                    break
                }
            }
        }

        on.message(channel: "^room-") { request, socket, context, message in
            guard message.event == "message", let body = message.arguments.first as? [String: Any],
                let action = body["action"] as? String
            else { return }
            switch action {
            case "start":
                let room = (body["room"] as? String).flatMap(Int.init) ?? -1
                guard chat.withValue({ roomExists(room, in: $0) }) else { throw ChatError(description: "no such room") }
                let name = clean(body["name"])
                guard !name.isEmpty, context["name"] == nil else {
                    throw ChatError(description: name.isEmpty ? "a name is needed" : "already started")
                }
                if try names(in: room, socket: socket).contains(name) {
                    try socket.send(["action": "in-use", "name": name])
                    return
                }
                try socket.setPresence(name)
                context["name"] = name
                context["room"] = String(room)
                try socket.send(["action": "started", "name": name, "users": try names(in: room, socket: socket)] as [String: Any])
                try socket.broadcastChannel(["action": "join", "name": name], channel: "room-\(room)")
            case "message":
                guard let name = context["name"], let room = context["room"] else {
                    throw ChatError(description: "start with a name first")
                }
                let text = clean(body["message"], limit: 1023)
                guard !text.isEmpty else { return }
                let formatter = DateFormatter()
                formatter.dateFormat = "HH:mm:ss"
                try socket.sendAndBroadcastChannel(
                    ["action": "message", "name": name, "message": text, "time": formatter.string(from: Date())],
                    channel: "room-\(room)")
            default:
                break
            }
        }

        on.subscribe(channel: "^room-") { request, socket, context, channel in
            let exists = chat.withValue { chat in roomID(ofChannel: channel).map { roomExists($0, in: chat) } ?? false }
            if !exists { throw Refuse("no such room") }
        }

        on.unsubscribe(channel: "^room-") { request, socket, context, channel in
            guard let name = context["name"], let room = context["room"], channel == "room-\(room)" else { return }
            try socket.broadcastChannel(["action": "leave", "name": name], channel: channel)
            try socket.setPresence(nil)
            context["name"] = nil
            context["room"] = nil
        }
    }
}

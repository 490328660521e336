import Foundation
import SioPlugin

/// The chat demo in Swift; behaviour and client protocol identical to Plugins/chat-c/chat.c
/// (see the comment at its top). Rooms and users live in the SDK's `PluginState`, which hands
/// them to the next version on a reload: no globals, no lock of its own.
private struct Room: Codable {
    var id: Int
    var name: String
}

private struct User: Codable {
    var room: Int
    var sid: String
    var name: String
}

/// Everything the chat knows, kept by the SDK and handed to the next version on a reload.
private struct Chat: Codable, Sendable {
    var rooms = [Room(id: 1, name: "Lobby")]
    var users: [User] = []
    var nextRoomID = 2

    func names(in room: Int) -> [String] {
        users.filter { $0.room == room }.map(\.name)
    }
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
    Plugin.define(name: "chat-swift", version: "1.1.0", state: Chat()) { on, chat in
        on.message { request, socket, context, message in
            guard message.ackID != nil else { return }
            try chat.withValue { chat in
                switch message.event {
                case "rooms":
                    let list = chat.rooms.map { ["id": $0.id, "name": $0.name, "users": chat.names(in: $0.id)] as [String: Any] }
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
            try chat.withValue { chat in
                switch action {
                case "start":
                    let room = (body["room"] as? String).flatMap(Int.init) ?? -1
                    guard chat.rooms.contains(where: { $0.id == room }) else { throw ChatError(description: "no such room") }
                    let name = clean(body["name"])
                    guard !name.isEmpty, !chat.users.contains(where: { $0.sid == socket.id }) else {
                        throw ChatError(description: name.isEmpty ? "a name is needed" : "already started")
                    }
                    if chat.users.contains(where: { $0.room == room && $0.name == name }) {
                        try socket.send(["action": "in-use", "name": name])
                        return
                    }
                    guard chat.users.count < 512 else { throw ChatError(description: "the chat is full") }
                    chat.users.append(User(room: room, sid: socket.id, name: name))
                    context["name"] = name
                    try socket.send(["action": "started", "name": name, "users": chat.names(in: room)] as [String: Any])
                    try socket.broadcastChannel(["action": "join", "name": name], channel: "room-\(room)")
                case "message":
                    guard let user = chat.users.first(where: { $0.sid == socket.id }) else {
                        throw ChatError(description: "start with a name first")
                    }
                    let text = clean(body["message"], limit: 1023)
                    guard !text.isEmpty else { return }
                    let formatter = DateFormatter()
                    formatter.dateFormat = "HH:mm:ss"
                    try socket.sendAndBroadcastChannel(
                        ["action": "message", "name": user.name, "message": text, "time": formatter.string(from: Date())],
                        channel: "room-\(user.room)")
                default:
                    break
                }
            }
        }

        on.subscribe(channel: "^room-") { request, socket, context, channel in
            let exists = chat.withValue { chat in roomID(ofChannel: channel).map { id in chat.rooms.contains { $0.id == id } } ?? false }
            if !exists { throw Refuse("no such room") }
        }

        on.unsubscribe(channel: "^room-") { request, socket, context, channel in
            try chat.withValue { chat in
                guard let index = chat.users.firstIndex(where: { $0.sid == socket.id }),
                    roomID(ofChannel: channel) == chat.users[index].room
                else { return }
                try socket.broadcastChannel(["action": "leave", "name": chat.users[index].name], channel: channel)
                chat.users.remove(at: index)
            }
        }
    }
}

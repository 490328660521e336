import Foundation
import SioPlugin

/// The chat demo in Swift; behaviour and client protocol identical to Plugins/chat-c/chat.c
/// (see the comment at its top). Room state survives a reload through retire/restore.
private struct Room {
    var id: Int
    var name: String
}

private struct User {
    var room: Int
    var sid: String
    var name: String
}

private let lock = NSLock()
nonisolated(unsafe) private var rooms: [Room] = []
nonisolated(unsafe) private var users: [User] = []
nonisolated(unsafe) private var nextRoomID = 1

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

private func names(in room: Int) -> [String] {
    users.filter { $0.room == room }.map(\.name)
}

private func restore(_ state: [UInt8]) {
    for line in String(decoding: state, as: UTF8.self).split(separator: "\n") {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        if fields.first == "R", fields.count == 3, let id = Int(fields[1]) {
            rooms.append(Room(id: id, name: fields[2]))
            nextRoomID = max(nextRoomID, id + 1)
        } else if fields.first == "U", fields.count == 4, let room = Int(fields[1]) {
            users.append(User(room: room, sid: fields[2], name: fields[3]))
        }
    }
}

private func retire() -> [UInt8] {
    lock.withLock {
        let lines = rooms.map { "R\t\($0.id)\t\($0.name)\n" } + users.map { "U\t\($0.room)\t\($0.sid)\t\($0.name)\n" }
        return Array(lines.joined().utf8)
    }
}

private struct ChatError: Error, CustomStringConvertible {
    let description: String
}

@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(name: "chat-swift", version: "1.0.0", restore: { state in
        restore(state)
        if rooms.isEmpty {
            rooms.append(Room(id: nextRoomID, name: "Lobby"))
            nextRoomID += 1
        }
    }, retire: retire) { on in
        on.message { request, socket, context, message in
            guard message.ackID != nil else { return }
            try lock.withLock {
                switch message.event {
                case "rooms":
                    let list = rooms.map { ["id": $0.id, "name": $0.name, "users": names(in: $0.id)] as [String: Any] }
                    try socket.ack(message, list)
                case "create_room":
                    let name = clean(message.arguments.first)
                    if name.isEmpty {
                        try socket.ack(message, ["error": "a room needs a name"])
                    } else if rooms.count >= 256 {
                        try socket.ack(message, ["error": "too many rooms"])
                    } else {
                        rooms.append(Room(id: nextRoomID, name: name))
                        nextRoomID += 1
                        try socket.ack(message, ["id": nextRoomID - 1])
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
            try lock.withLock {
                switch action {
                case "start":
                    let room = (body["room"] as? String).flatMap(Int.init) ?? -1
                    guard rooms.contains(where: { $0.id == room }) else { throw ChatError(description: "no such room") }
                    let name = clean(body["name"])
                    guard !name.isEmpty, !users.contains(where: { $0.sid == socket.id }) else {
                        throw ChatError(description: name.isEmpty ? "a name is needed" : "already started")
                    }
                    if users.contains(where: { $0.room == room && $0.name == name }) {
                        try socket.send(["action": "in-use", "name": name])
                        return
                    }
                    guard users.count < 512 else { throw ChatError(description: "the chat is full") }
                    users.append(User(room: room, sid: socket.id, name: name))
                    context["name"] = name
                    try socket.send(["action": "started", "name": name, "users": names(in: room)] as [String: Any])
                    try socket.broadcastChannel(["action": "join", "name": name], channel: "room-\(room)")
                case "message":
                    guard let user = users.first(where: { $0.sid == socket.id }) else {
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
            let exists = lock.withLock { roomID(ofChannel: channel).map { id in rooms.contains { $0.id == id } } ?? false }
            if !exists { throw Refuse("no such room") }
        }

        on.unsubscribe(channel: "^room-") { request, socket, context, channel in
            try lock.withLock {
                guard let index = users.firstIndex(where: { $0.sid == socket.id }),
                    roomID(ofChannel: channel) == users[index].room
                else { return }
                try socket.broadcastChannel(["action": "leave", "name": users[index].name], channel: channel)
                users.remove(at: index)
            }
        }
    }
}

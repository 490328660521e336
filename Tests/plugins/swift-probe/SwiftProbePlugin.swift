import Foundation
import SioPlugin

/// The Swift SDK under test: refusal by `throw Refuse`, errors by any other `throw`, context,
/// channel binding and out-of-band sends from another thread. Events are traced to
/// $SIO_TRACE_FILE as "swift EVENT SOCKET-ID EXTRA".
private func trace(_ kind: String, _ socket: Socket, _ extra: String = "") {
    guard let path = ProcessInfo.processInfo.environment["SIO_TRACE_FILE"] else { return }
    let line = "swift \(kind) \(socket.id) \(socket.namespace) \(extra)\n"
    if let handle = FileHandle(forWritingAtPath: path) {
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
        handle.closeFile()
    } else {
        _ = FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
    }
}

private struct ProbeError: Error, CustomStringConvertible {
    let description: String
}

/// A typed payload, decoded from and encoded to the client's JSON.
private struct Point: Codable {
    var x: Int
    var y: Int
}

@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(name: "swift-probe", version: "2.0.0") { on in
        on.connect { request, socket, context, auth in
            let auth = auth as? [String: Any] ?? [:]
            trace("connect", socket)
            if let reason = auth["refuse"] as? String { throw Refuse(reason) }
            context["name"] = auth["name"] as? String ?? "anonymous"
        }
        on.message { request, socket, context, message in
            trace("message", socket, message.event)
            switch message.event {
            case "hello":
                try socket.send("hello \(context["name"] ?? "?") from swift")
            case "whoami":
                try socket.ack(message, context["name"] ?? NSNull(), request.path)
            case "crash":
                // Isolated mode's test: a Swift trap ends the runner, not the server.
                fatalError("crash on purpose")
            case "throw":
                throw ProbeError(description: "thrown: \(message.arguments.first ?? "")")
            case "shout":
                try socket.sendAndBroadcastChannel(message.arguments.first ?? NSNull())
            case "oob":
                let id = socket.id
                Thread.detachNewThread {
                    try? Plugin.send(sessionID: id, "out of band from a thread")
                    do {
                        try Plugin.broadcastChannel("nobody hears", channel: "empty-channel")
                    } catch SioError.noSocket {
                        try? Plugin.send(sessionID: id, "no socket on empty-channel")
                    } catch {}
                }
            default:
                break
            }
        }
        on.event("swap") { request, socket, context, message in
            let point = try message.decode(Point.self)
            try socket.ack(message, Point(x: point.y, y: point.x), "swapped")
        }
        on.event("points") { request, socket, context, message in
            try socket.emit("points", [Point(x: 1, y: 2), Point(x: 3, y: 4)], ["plain": true])
            Plugin.log("points sent to \(socket.id)", level: .warning)
        }
        on.event("to-room") { request, socket, context, message in
            try socket.emit("room-news", Point(x: 1, y: 1), "from \(socket.id)", toChannel: "room")
            try socket.emit("everyone", "hi", toChannel: nil, includingSelf: true)
            try Plugin.emit("direct", "just you", toSocket: socket.id)
            do {
                try Plugin.emit("tick", toChannel: "empty-room")
            } catch SioError.noSocket {
                try socket.ack(message, "nobody in empty-room")
            }
        }
        on.event("ask-swift") { request, socket, context, message in
            let id = socket.id
            try socket.emitWithAck("question", "from swift", timeout: .milliseconds(300)) { socket, reply in
                switch reply {
                case .answered(let answer):
                    try? socket?.send(["answered": (try? answer.decode(String.self)) ?? "?"])
                case .timedOut:
                    try? socket?.send("swift timeout")
                case .disconnected:
                    try? Plugin.send(sessionID: id, "unreachable")
                }
            }
        }
        // Async handlers (ABI 1.3): each connection, "slow-upper", "slow-throw" and channels
        // "async-…" finish later, on a task.
        on.connect { request, socket, auth async throws in
            switch (auth.value as? [String: Any])?["async"] as? String {
            case "refuse":
                try await Task.sleep(for: .milliseconds(50))
                throw Refuse("async says no")
            case "slow":
                try await Task.sleep(for: .milliseconds(300))
            default:
                break
            }
        }
        on.event("slow-upper") { request, socket, message async throws in
            try await Task.sleep(for: .milliseconds(300))
            try socket.ack(message, try message.decode(String.self).uppercased())
            try socket.emit("upper-done", request.path)
        }
        on.event("slow-throw") { request, socket, message async throws in
            try await Task.sleep(for: .milliseconds(50))
            throw ProbeError(description: "async thrown")
        }
        on.subscribe(channel: "^async-") { request, socket, channel async throws in
            try await Task.sleep(for: .milliseconds(100))
            if channel == "async-no" { throw Refuse("async members only") }
        }
        on.subscribe(channel: "^vip-") { request, socket, context, channel in
            trace("vip-subscribe", socket, channel)
            throw Refuse("members only")
        }
        on.error { request, socket, context, error in
            trace("error", socket, error)
        }
        on.finish { request, socket, context in
            trace("finish", socket, context["name"] ?? "")
        }
    }
}

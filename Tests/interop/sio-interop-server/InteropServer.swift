import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SocketIOCodec
import SocketIOServer

/// A scripted application for the interop tests: each event name asks for one server behaviour,
/// so that real clients can check every direction of the protocol without plugins.
final class InteropApplication: Application, Sendable {
    let server = NIOLockedValueBox<Server?>(nil)

    func connect(_ socket: Socket, auth: JSONValue?) -> ConnectDecision {
        if let message = auth?["refuse"]?.stringValue {
            return .refuse(message: message, data: ["reason": "asked"])
        }
        socket.emit("welcome", [["sid": .string(socket.id), "namespace": .string(socket.namespace), "auth": auth ?? .null,
                                 "query": .string(socket.request.queryParameter("tag") ?? "")]])
        return .accept
    }

    func message(_ socket: Socket, event: IncomingEvent) -> MessageDecision {
        handle(socket, event)
        return .handled
    }

    private func handle(_ socket: Socket, _ event: IncomingEvent) {
        switch event.name {
        case "echo":
            socket.emit("echo", event.arguments, attachments: event.attachments)
            if let id = event.ackID { socket.ack(id, event.arguments, attachments: event.attachments) }
        case "ask":
            // Server → client emit with an ack; the client's answer comes back as "answer".
            socket.emit("question", event.arguments, attachments: event.attachments) { [socket] arguments, attachments in
                socket.emit("answer", arguments, attachments: attachments)
            }
        case "emit-many":
            let count = event.arguments.first?.intValue ?? 0
            for i in 0..<count { socket.emit("many", [.number(i)]) }
        case "broadcast":
            let reached = server.withLockedValue { $0 }?.emit(namespace: socket.namespace, event: "broadcast", event.arguments) ?? 0
            if let id = event.ackID { socket.ack(id, [.number(reached)]) }
        case "disconnect-me":
            socket.disconnect()
        default:
            if let id = event.ackID { socket.ack(id, [.string("unknown event \(event.name)")]) }
        }
    }
}

@main
enum InteropServer {
    static func main() async throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.namespaces = ["/", "/admin"]
        let environment = ProcessInfo.processInfo.environment
        if let ms = environment["SIO_PING_INTERVAL"].flatMap(Int64.init) { configuration.pingInterval = ms }
        if let ms = environment["SIO_PING_TIMEOUT"].flatMap(Int64.init) { configuration.pingTimeout = ms }
        if let bytes = environment["SIO_MAX_PAYLOAD"].flatMap(Int.init) { configuration.maxPayload = bytes }
        configuration.staticDirectory = environment["SIO_STATIC"]
        var logger = Logger(label: "sio-interop")
        logger.logLevel = environment["SIO_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let application = InteropApplication()
        let server = Server(configuration: configuration, application: application, logger: logger)
        application.server.withLockedValue { $0 = server }
        try await server.runUntilSignalled(logger: logger)
    }
}

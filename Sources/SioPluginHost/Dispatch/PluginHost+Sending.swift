import CSioPlugin
import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SocketIOCodec
import SocketIOServer

/// What handlers and the admin endpoint send through the host.
extension PluginHost {
    // MARK: Sending

    func sendMessage(_ value: JSONValue, namespace: String, channels: [String]? = nil, excluding: String? = nil) {
        attached.load()?.emit(namespace: namespace, event: "message", [value], channels: channels, excluding: excluding)
    }

    public func outOfBandBroadcast(_ value: JSONValue, namespace: String, channel: String?) -> DeliveryResult {
        guard let server = attached.load() else { return .noSocket("server not running") }
        let reached = server.emit(namespace: namespace, event: "message", [value], channels: channel.map { [$0] })
        if reached == 0 {
            return .noSocket(channel.map { "no socket on channel \($0)" } ?? "no socket connected to \(namespace)")
        }
        return .delivered(reached)
    }

    /// Any event to every socket of `namespace`, or to the subscribers of `channel`.
    func outOfBandEmit(_ event: String, _ arguments: [JSONValue], attachments: [ByteBuffer], namespace: String,
                       channel: String?) -> DeliveryResult {
        guard let server = attached.load() else { return .noSocket("server not running") }
        let reached = server.emit(namespace: namespace, event: event, arguments, attachments: attachments,
                                  channels: channel.map { [$0] })
        if reached == 0 {
            return .noSocket(channel.map { "no socket on channel \($0)" } ?? "no socket connected to \(namespace)")
        }
        return .delivered(reached)
    }

    /// Any event to one socket, by id.
    func outOfBandEmit(_ event: String, _ arguments: [JSONValue], attachments: [ByteBuffer], namespace: String,
                       socketID: String) -> DeliveryResult {
        guard let socket = attached.load()?.socket(id: socketID, namespace: namespace) else {
            return .noSocket("no socket with id \(socketID)")
        }
        socket.emit(event, arguments, attachments: attachments)
        return .delivered(1)
    }

    public func outOfBandSend(_ value: JSONValue, namespace: String, socketID: String) -> DeliveryResult {
        guard let socket = attached.load()?.socket(id: socketID, namespace: namespace) else {
            return .noSocket("no socket with id \(socketID)")
        }
        socket.emit("message", [value])
        return .delivered(1)
    }
}

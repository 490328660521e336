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
            + server.remoteCount(namespace: namespace, channel: channel)
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
            + server.remoteCount(namespace: namespace, channel: channel)
        if reached == 0 {
            return .noSocket(channel.map { "no socket on channel \($0)" } ?? "no socket connected to \(namespace)")
        }
        return .delivered(reached)
    }

    /// Any event to one socket, by id, on whichever node of the cluster has it.
    func outOfBandEmit(_ event: String, _ arguments: [JSONValue], attachments: [ByteBuffer], namespace: String,
                       socketID: String) -> DeliveryResult {
        guard let server = attached.load(),
              server.emit(toSocket: socketID, namespace: namespace, event: event, arguments, attachments: attachments) else {
            return .noSocket("no socket with id \(socketID)")
        }
        return .delivered(1)
    }

    public func outOfBandSend(_ value: JSONValue, namespace: String, socketID: String) -> DeliveryResult {
        outOfBandEmit("message", [value], attachments: [], namespace: namespace, socketID: socketID)
    }
}

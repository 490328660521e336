import NIOCore
import NIOPosix
import SocketIOCodec

/// Out-of-band sending, behind `Server.emit`: here, so that it runs (and is tested) on the
/// context's registries alone.
extension ServerContext {
    /// Emits to every socket of `namespace`, or to the subscribers of any of `channels`,
    /// except `excluding`. Encodes once; returns how many sockets it reached.
    @discardableResult
    func emit(namespace: String = "/", event: String, _ arguments: [JSONValue], attachments: [ByteBuffer] = [],
              channels: [String]? = nil, excluding: String? = nil) -> Int {
        guard let registry = namespaces[namespace] else { return 0 }
        let recipients = channels.map { registry.subscribers(of: $0) } ?? registry.allSockets
        let packet = SocketIOPacket(
            kind: attachments.isEmpty ? .event : .binaryEvent, namespace: namespace,
            data: .array([.string(event)] + arguments), attachmentCount: attachments.count)
        let encoded = OutboundMessage(Client.enginePackets(packet, attachments: attachments))
        // The excluded sender is found once; recipients are then told apart by identity, not by
        // comparing 20-character ids a thousand times.
        let excluded = excluding.flatMap { registry.socket($0) }
        let callerLoop = MultiThreadedEventLoopGroup.currentEventLoop
        var count = 0
        for socket in recipients where socket !== excluded {
            socket.sendEncoded(encoded, callerLoop: callerLoop)
            count += 1
        }
        if let metrics {
            metrics.broadcasts.increment()
            metrics.deliveries.increment(by: Int64(count))
        }
        return count
    }
}

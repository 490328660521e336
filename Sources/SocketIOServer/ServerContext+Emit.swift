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
        // With recovery, the offset rides as the last argument, as socket.io's client expects.
        let offset = recovery?.nextOffset() ?? 0
        let packet = SocketIOPacket(
            kind: attachments.isEmpty ? .event : .binaryEvent, namespace: namespace,
            data: .array([.string(event)] + arguments + (offset != 0 ? [.string(RecoverySettings.text(offset))] : [])),
            attachmentCount: attachments.count)
        let engine = Client.enginePackets(packet, attachments: attachments)
        if let cluster {
            cluster.publish(.broadcast(namespace: namespace, channels: channels ?? [], excluding: excluding,
                                       packet: engine[0].payload, attachments: attachments))
        }
        let encoded = OutboundMessage(engine, offset: offset)
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

/// What other nodes of the cluster ask of this one.
extension ServerContext {
    func deliverFromCluster(_ message: ClusterMessage) {
        switch message {
        case .broadcast(let namespace, let channels, let excluding, let packet, let attachments):
            guard let registry = namespaces[namespace] else { return }
            let recipients = channels.isEmpty ? registry.allSockets : registry.subscribers(of: channels)
            guard !recipients.isEmpty else { return }
            let encoded = OutboundMessage(Self.enginePackets(packet, attachments))
            let excluded = excluding.flatMap { registry.socket($0) }
            // One task per loop, not per recipient: this runs on the cluster's own thread.
            var byLoop: [ObjectIdentifier: (EventLoop, [Socket])] = [:]
            for socket in recipients where socket !== excluded {
                byLoop[ObjectIdentifier(socket.eventLoop), default: (socket.eventLoop, [])].1.append(socket)
            }
            for (loop, sockets) in byLoop.values {
                loop.execute {
                    for socket in sockets { socket.sendEncoded(encoded, callerLoop: loop) }
                }
            }
            if let metrics {
                metrics.deliveries.increment(by: Int64(byLoop.values.reduce(0) { $0 + $1.1.count }))
            }
        case .toSocket(let namespace, let id, let packet, let attachments):
            guard let socket = namespaces[namespace]?.socket(id) else { return }
            socket.sendEncoded(OutboundMessage(Self.enginePackets(packet, attachments)), callerLoop: nil)
        case .operation(let namespace, let id, let operation):
            guard let socket = namespaces[namespace]?.socket(id) else { return }
            socket.perform(operation)
        }
    }

    private static func enginePackets(_ packet: ByteBuffer, _ attachments: [ByteBuffer]) -> [EngineIOPacket] {
        [EngineIOPacket(.message, payload: packet)] + attachments.map { .binary($0) }
    }

    /// Sends an event to one socket of the cluster, wherever it is: false when no node has it.
    func emit(toSocket id: String, namespace: String, event: String, _ arguments: [JSONValue],
              attachments: [ByteBuffer]) -> Bool {
        if let socket = namespaces[namespace]?.socket(id) {
            socket.emit(event, arguments, attachments: attachments)
            return true
        }
        guard let cluster, cluster.hasRemoteSocket(id, namespace: namespace) else { return false }
        let packet = SocketIOPacket(
            kind: attachments.isEmpty ? .event : .binaryEvent, namespace: namespace,
            data: .array([.string(event)] + arguments), attachmentCount: attachments.count)
        cluster.publish(.toSocket(namespace: namespace, socket: id, packet: packet.encoded(), attachments: attachments))
        return true
    }

    /// Joins, leaves or disconnects one socket of the cluster by id: false when no node has it.
    func perform(_ operation: SocketOperation, onSocket id: String, namespace: String) -> Bool {
        if let socket = namespaces[namespace]?.socket(id) {
            socket.perform(operation)
            return true
        }
        guard let cluster, cluster.hasRemoteSocket(id, namespace: namespace) else { return false }
        cluster.publish(.operation(namespace: namespace, socket: id, operation))
        return true
    }
}

extension Socket {
    func perform(_ operation: SocketOperation) {
        switch operation {
        case .join(let channel): join(channel)
        case .leave(let channel): leave(channel)
        case .disconnect: disconnect()
        }
    }
}

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
        let engine = Client.enginePackets(packet, attachments: attachments)
        let encoded = recoverable(engine, tag: nil, channels: channels ?? [], excluding: excluding, registry: registry)
        // Without the offset: each node gives the message one of its own.
        cluster?.publish(.broadcast(namespace: namespace, channels: channels ?? [], excluding: excluding,
                                    packet: engine[0].payload, attachments: attachments, id: encoded.offset))
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
    func deliverFromCluster(_ message: ClusterMessage, from node: String) {
        switch message {
        case .broadcast(let namespace, let channels, let excluding, let packet, let attachments, let id):
            guard let registry = namespaces[namespace] else { return }
            let recipients = channels.isEmpty ? registry.allSockets : registry.subscribers(of: channels)
            guard !recipients.isEmpty else { return }
            let encoded = recoverable(Self.enginePackets(packet, attachments), tag: MessageTag(node: node, id: id),
                                      channels: channels, excluding: excluding, registry: registry)
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
        case .toSocket(let namespace, let socket, let packet, let attachments, let id):
            guard let socket = namespaces[namespace]?.socket(socket) else { return }
            socket.sendEncoded(incoming(packet, attachments, tag: MessageTag(node: node, id: id)), callerLoop: nil)
        case .operation(let namespace, let id, let operation):
            guard let socket = namespaces[namespace]?.socket(id) else { return }
            socket.perform(operation)
        case .recoveryClaim(let namespace, let socket, let pid, let offset):
            answerClaim(namespace: namespace, socket: socket, pid: pid, offset: offset, from: node)
        case .recoveryAnswer(let pid, let state):
            claimAnswered(pid: pid, state, from: node)
        }
    }

    /// A packet from another node (or handed over by one), made ready for one of this node's
    /// clients: with recovery, it gets an offset of this node, and keeps its name in the cluster.
    func incoming(_ packet: ByteBuffer, _ attachments: [ByteBuffer], tag: MessageTag) -> OutboundMessage {
        recoverable(Self.enginePackets(packet, attachments), tag: tag, channels: [], excluding: nil, registry: nil)
    }

    private static func enginePackets(_ packet: ByteBuffer, _ attachments: [ByteBuffer]) -> [EngineIOPacket] {
        [EngineIOPacket(.message, payload: packet)] + attachments.map { .binary($0) }
    }

    /// A broadcast's packets, encoded once for its recipients. With recovery, the offset rides
    /// as the last argument, as socket.io's client expects; a broadcast to one channel is kept by
    /// the channel's history (once), anything else by each recipient. `tag`: its name in the
    /// cluster when it came from another node.
    private func recoverable(_ engine: [EngineIOPacket], tag: MessageTag?, channels: [String], excluding: String?,
                             registry: NamespaceRegistry?) -> OutboundMessage {
        guard let recovery else { return OutboundMessage(engine) }
        let shared = channels.count == 1 && registry != nil
        // A sender without recovery names nothing: the message is then this node's own.
        let origin = tag.flatMap { $0.id != 0 ? $0 : nil }
        let make = { (offset: UInt64) -> OutboundMessage in
            var packets = engine
            if let withOffset = RecoverySettings.appending(offset, to: engine[0].payload) {
                packets[0] = EngineIOPacket(.message, payload: withOffset)
            }
            return OutboundMessage(packets, offset: offset, origin: origin, isShared: shared, excluded: shared ? excluding : nil)
        }
        guard shared, let registry else { return make(recovery.nextOffset()) }
        return registry.history(channels[0], recovery).append(recovery, make)
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
        cluster.publish(.toSocket(namespace: namespace, socket: id, packet: packet.encoded(), attachments: attachments,
                                  id: recovery?.nextOffset() ?? 0))
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

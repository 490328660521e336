import NIOCore
import SocketIOCodec

/// Engine.IO packets on their way out, with their WebSocket frames encoded once.
///
/// A broadcast builds one of these and hands the same object to every recipient: WebSocket
/// sessions write `webSocketFrames` as it is (a reference to shared bytes, no copy, no
/// allocation per recipient), polling sessions queue `packets`.
final class OutboundMessage: Sendable {
    let packets: [EngineIOPacket]
    let webSocketFrames: ByteBuffer
    /// Its recovery offset (the last argument of the event), 0 for none: what a recoverable
    /// socket keeps and sends again.
    let offset: UInt64
    /// When it was made (uptime nanoseconds), for messages with an offset: read once for all the
    /// recipients that keep it, not once each.
    let madeAt: UInt64
    /// With a cluster, the node a broadcast came from and its offset there (nil: made here,
    /// the offset is its id): how a recovering node knows a message it holds was sent already.
    let origin: MessageTag?
    /// Kept by its channel's history (`ChannelHistory`), not by each recipient.
    let isShared: Bool
    /// The socket a shared broadcast was not for (its sender), by id.
    let excluded: String?

    init(_ packets: [EngineIOPacket], offset: UInt64 = 0, origin: MessageTag? = nil, isShared: Bool = false,
         excluded: String? = nil) {
        self.packets = packets
        self.offset = offset
        self.origin = origin
        self.isShared = isShared
        self.excluded = excluded
        self.madeAt = offset != 0 ? NIODeadline.now().uptimeNanoseconds : 0
        var frames = ByteBuffer()
        frames.reserveCapacity(packets.reduce(0) { $0 + $1.payload.readableBytes + 11 })
        for packet in packets { WebSocketFrameWriter.write(packet, into: &frames) }
        self.webSocketFrames = frames
    }
}

extension OutboundMessage {
    /// Its name across the cluster, `node` being this one's.
    func tag(localNode node: String) -> MessageTag {
        origin ?? MessageTag(node: node, id: offset)
    }
}

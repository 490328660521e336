import NIOCore
import SocketIOCodec

/// What waits for a long-polling client's next GET, and how many payload bytes that is: past
/// `maxOutboundBytes` the client is a slow consumer (it stopped polling).
struct PollingOutbox {
    private(set) var packets: [EngineIOPacket] = []
    private(set) var bytes = 0

    /// python-engineio refuses a polling payload of more than 16 packets ("Too many packets in
    /// payload"), so a long outbox goes out over several polls.
    static let maximumPacketsPerPoll = 16

    var isEmpty: Bool { packets.isEmpty }

    mutating func append(contentsOf more: [EngineIOPacket]) {
        packets.append(contentsOf: more)
        for packet in more { bytes += packet.payload.readableBytes + 1 }
    }

    /// One poll's worth, encoded as a payload; `then` goes last, within the 16.
    mutating func takePayload(then last: EngineIOPacket? = nil) -> ByteBuffer {
        let count = min(packets.count, Self.maximumPacketsPerPoll - (last == nil ? 0 : 1))
        var taken = Array(packets[..<count])
        for packet in taken { bytes -= packet.payload.readableBytes + 1 }
        packets.removeFirst(count)
        if let last { taken.append(last) }
        var body = ByteBuffer()
        PollingPayload.encode(taken, into: &body)
        return body
    }

    mutating func takeAll() -> [EngineIOPacket] {
        defer { self = PollingOutbox() }
        return packets
    }

    static func payload(_ packet: EngineIOPacket) -> ByteBuffer {
        var body = ByteBuffer()
        PollingPayload.encode([packet], into: &body)
        return body
    }
}

import NIOCore

/// One Engine.IO v4 packet.
///
/// The payload stays a `ByteBuffer` slice of what arrived so that a message can be handed up to
/// the Socket.IO layer without copying.
public struct EngineIOPacket: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        case open = 0, close, ping, pong, message, upgrade, noop
    }

    public var kind: Kind
    public var payload: ByteBuffer
    /// Binary packets are always messages; they travel as WebSocket binary frames or as
    /// `b`+base64 on long-polling.
    public var isBinary: Bool

    public init(_ kind: Kind, payload: ByteBuffer = ByteBuffer(), isBinary: Bool = false) {
        self.kind = kind
        self.payload = payload
        self.isBinary = isBinary
    }

    public static func message(_ text: String) -> EngineIOPacket {
        EngineIOPacket(.message, payload: ByteBuffer(string: text))
    }

    public static func binary(_ bytes: ByteBuffer) -> EngineIOPacket {
        EngineIOPacket(.message, payload: bytes, isBinary: true)
    }

    /// Decodes the content of a WebSocket text frame (or one text packet of a polling payload).
    public static func decodeText(_ buffer: ByteBuffer) throws(CodecError) -> EngineIOPacket {
        var buffer = buffer
        guard let typeByte = buffer.readInteger(as: UInt8.self) else { throw .emptyPacket }
        guard typeByte >= UInt8(ascii: "0"), let kind = Kind(rawValue: typeByte &- UInt8(ascii: "0")) else {
            throw .unknownPacketType
        }
        return EngineIOPacket(kind, payload: buffer)
    }

    /// Writes the packet as a WebSocket text frame's content (binary packets are sent as-is).
    public func writeText(into output: inout ByteBuffer) {
        output.writeInteger(UInt8(ascii: "0") + kind.rawValue)
        var payload = payload
        output.writeBuffer(&payload)
    }
}

/// The long-polling body format: packets separated by the record separator `0x1e`, binary
/// packets as `b` followed by base64.
public enum PollingPayload {
    public static let separator: UInt8 = 0x1E

    public static func decode(_ body: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(CodecError) -> [EngineIOPacket] {
        var packets: [EngineIOPacket] = []
        let view = body.readableBytesView
        guard !view.isEmpty else { throw .emptyPacket }
        var start = view.startIndex
        while true {
            let end = view[start...].firstIndex(of: separator) ?? view.endIndex
            let part = body.getSlice(at: start, length: end - start)!
            if part.readableBytesView.first == UInt8(ascii: "b") {
                let decoded = try Base64.decode(part.readableBytesView.dropFirst(), allocator: allocator)
                packets.append(.binary(decoded))
            } else {
                packets.append(try EngineIOPacket.decodeText(part))
            }
            if end == view.endIndex { break }
            start = end + 1
        }
        return packets
    }

    public static func encode(_ packets: some Sequence<EngineIOPacket>, into output: inout ByteBuffer) {
        var first = true
        for packet in packets {
            if !first { output.writeInteger(separator) }
            first = false
            if packet.isBinary {
                output.writeInteger(UInt8(ascii: "b"))
                Base64.encode(packet.payload.readableBytesView, into: &output)
            } else {
                packet.writeText(into: &output)
            }
        }
    }
}

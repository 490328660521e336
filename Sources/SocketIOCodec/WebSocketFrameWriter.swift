import NIOCore

/// Server-to-client WebSocket frames (RFC 6455: final, unmasked), the counterpart of
/// `WebSocketFrameParser`: Engine.IO packets are written straight into frame bytes, with no
/// frame value in between.
public enum WebSocketFrameWriter {
    /// A control frame (close 0x8, ping 0x9, pong 0xA); its payload is at most 125 bytes.
    @inlinable
    public static func writeControl(opcode: UInt8, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        var payload = payload
        buffer.writeInteger(0x80 | opcode)
        buffer.writeInteger(UInt8(min(payload.readableBytes, 125)))
        buffer.writeBuffer(&payload)
    }

    @inlinable
    public static func write(_ packet: EngineIOPacket, into buffer: inout ByteBuffer) {
        let length = packet.payload.readableBytes + (packet.isBinary ? 0 : 1)
        buffer.writeInteger(UInt8(packet.isBinary ? 0x82 : 0x81))
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        if !packet.isBinary { buffer.writeInteger(UInt8(ascii: "0") + packet.kind.rawValue) }
        var payload = packet.payload
        buffer.writeBuffer(&payload)
    }
}

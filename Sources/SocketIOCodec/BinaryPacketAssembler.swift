import NIOCore

/// Collects the binary attachments that follow a BINARY_EVENT or BINARY_ACK header.
///
/// A state machine in the manner of NIO's parsers: feed it what arrives, act on what it returns.
public struct BinaryPacketAssembler: Sendable {
    public enum Action: Sendable {
        /// A complete packet with its attachments, in order.
        case packet(SocketIOPacket, [ByteBuffer])
        /// More attachments are expected before anything can be delivered.
        case needMore
    }

    private enum State: Sendable {
        case idle
        case collecting(SocketIOPacket, [ByteBuffer])
    }

    private var state: State = .idle

    public init() {}

    public var isCollecting: Bool {
        if case .collecting = state { return true }
        return false
    }

    /// Feed the text of a Socket.IO packet.
    ///
    /// A text packet in the middle of an attachment sequence is an error: the protocol sends a
    /// header's attachments back to back.
    public mutating func receiveText(_ buffer: ByteBuffer) throws(CodecError) -> Action {
        guard case .idle = state else { throw .invalidPayload("text packet while awaiting attachments") }
        let packet = try SocketIOPacket.decode(buffer)
        if packet.kind.isBinary, packet.attachmentCount > 0 {
            state = .collecting(packet, [])
            return .needMore
        }
        return .packet(packet, [])
    }

    /// Feed a binary Engine.IO message.
    public mutating func receiveBinary(_ buffer: ByteBuffer) throws(CodecError) -> Action {
        guard case .collecting(let packet, var attachments) = state else { throw .unexpectedAttachment }
        attachments.append(buffer)
        if attachments.count == packet.attachmentCount {
            state = .idle
            return .packet(packet, attachments)
        }
        state = .collecting(packet, attachments)
        return .needMore
    }
}

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

    /// `indirect`: every connection holds an assembler, and few ever collect; boxed, the state
    /// costs an idle connection a pointer instead of a whole packet.
    private enum State: Sendable {
        case idle
        indirect case collecting(SocketIOPacket, [ByteBuffer])
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
        try Self.checkPlaceholders(packet.data, attachmentCount: 0)
        return .packet(packet, [])
    }

    /// Feed a binary Engine.IO message.
    public mutating func receiveBinary(_ buffer: ByteBuffer) throws(CodecError) -> Action {
        guard case .collecting(let packet, var attachments) = state else { throw .unexpectedAttachment }
        attachments.append(buffer)
        if attachments.count == packet.attachmentCount {
            state = .idle
            try Self.checkPlaceholders(packet.data, attachmentCount: attachments.count)
            return .packet(packet, attachments)
        }
        state = .collecting(packet, attachments)
        return .needMore
    }

    /// Every `{"_placeholder":true,"num":N}` must name one of the packet's attachments: handlers
    /// (C ones especially) index the attachments with `N`, so a packet whose placeholders point
    /// elsewhere, or that has placeholders but no attachments, is refused as a whole.
    static func checkPlaceholders(_ value: JSONValue?, attachmentCount: Int) throws(CodecError) {
        switch value {
        case .array(let items)?:
            for item in items { try checkPlaceholders(item, attachmentCount: attachmentCount) }
        case .object(let members)?:
            if members.contains(where: { $0.0 == "_placeholder" && $0.1 == .bool(true) }) {
                guard case .number(let text)? = members.first(where: { $0.0 == "num" })?.1,
                    let number = Int(text), (0..<attachmentCount).contains(number)
                else {
                    throw .illegalAttachments("a placeholder names no attachment of the \(attachmentCount) sent")
                }
                return
            }
            for (_, member) in members { try checkPlaceholders(member, attachmentCount: attachmentCount) }
        default:
            return
        }
    }
}

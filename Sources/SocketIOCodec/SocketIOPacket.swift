import NIOCore

/// One Socket.IO v5 packet: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`.
///
/// Binary attachments are not part of the packet text; they follow as separate Engine.IO binary
/// messages, and `BinaryPacketAssembler` collects them.
public struct SocketIOPacket: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        case connect = 0, disconnect, event, ack, connectError, binaryEvent, binaryAck

        public var isBinary: Bool { self == .binaryEvent || self == .binaryAck }
    }

    /// Upper bound on attachments a packet may announce, so that a client cannot make the
    /// server reserve an absurd amount of state with one short header.
    public static let maximumAttachments = 1000

    public var kind: Kind
    public var namespace: String
    public var ackID: Int?
    public var data: JSONValue?
    public var attachmentCount: Int

    public init(kind: Kind, namespace: String = "/", ackID: Int? = nil, data: JSONValue? = nil, attachmentCount: Int = 0) {
        self.kind = kind
        self.namespace = namespace
        self.ackID = ackID
        self.data = data
        self.attachmentCount = attachmentCount
    }

    /// The event name of an EVENT or BINARY_EVENT packet.
    public var eventName: String? {
        guard kind == .event || kind == .binaryEvent, case .array(let items)? = data else { return nil }
        return items.first?.stringValue
    }

    /// The arguments after the event name (EVENT) or the whole array (ACK).
    public var arguments: [JSONValue] {
        guard case .array(let items)? = data else { return [] }
        switch kind {
        case .event, .binaryEvent: return Array(items.dropFirst())
        default: return items
        }
    }

    public static func decode(_ buffer: ByteBuffer) throws(CodecError) -> SocketIOPacket {
        let view = buffer.readableBytesView
        var index = view.startIndex
        guard index < view.endIndex else { throw .emptyPacket }
        let typeByte = view[index]
        guard typeByte >= UInt8(ascii: "0"), let kind = Kind(rawValue: typeByte &- UInt8(ascii: "0")) else {
            throw .unknownPacketType
        }
        index += 1

        var attachments = 0
        if kind.isBinary {
            let digitsStart = index
            while index < view.endIndex, isDigit(view[index]) {
                attachments = attachments * 10 + Int(view[index] - UInt8(ascii: "0"))
                guard attachments <= maximumAttachments else { throw .invalidAttachmentCount }
                index += 1
            }
            guard index > digitsStart, index < view.endIndex, view[index] == UInt8(ascii: "-") else {
                throw .invalidAttachmentCount
            }
            index += 1
        }

        var namespace = "/"
        if index < view.endIndex, view[index] == UInt8(ascii: "/") {
            let start = index
            while index < view.endIndex, view[index] != UInt8(ascii: ",") { index += 1 }
            guard let name = String(validating: view[start..<index], as: UTF8.self) else { throw .invalidUTF8 }
            namespace = name
            if index < view.endIndex { index += 1 }  // the comma
        }

        var ackID: Int?
        if index < view.endIndex, isDigit(view[index]) {
            var id = 0
            var digits = 0
            while index < view.endIndex, isDigit(view[index]) {
                digits += 1
                // Ack ids are JavaScript numbers; past 2^53 they cannot round-trip.
                guard digits <= 16 else { throw .invalidAckID }
                id = id * 10 + Int(view[index] - UInt8(ascii: "0"))
                index += 1
            }
            ackID = id
        }

        var data: JSONValue?
        if index < view.endIndex {
            data = try JSONValue(parsing: view[index...])
        }

        let packet = SocketIOPacket(kind: kind, namespace: namespace, ackID: ackID, data: data, attachmentCount: attachments)
        try packet.validate()
        return packet
    }

    /// Checks the data shape each packet type requires (Socket.IO protocol v5, "Packet format").
    private func validate() throws(CodecError) {
        switch kind {
        case .connect:
            if let data, !data.isObject { throw .invalidPayload("CONNECT data must be an object") }
        case .disconnect:
            if data != nil { throw .invalidPayload("DISCONNECT carries no data") }
        case .event, .binaryEvent:
            guard case .array(let items)? = data, items.first?.stringValue != nil else {
                throw .invalidPayload("EVENT data must be an array starting with the event name")
            }
        case .ack, .binaryAck:
            guard ackID != nil else { throw .invalidAckID }
            guard case .array? = data else { throw .invalidPayload("ACK data must be an array") }
        case .connectError:
            guard let data, data.isObject || data.stringValue != nil else {
                throw .invalidPayload("CONNECT_ERROR data must be an object")
            }
        }
    }

    public func encode(into output: inout ByteBuffer) {
        output.writeInteger(UInt8(ascii: "0") + kind.rawValue)
        if kind.isBinary {
            output.writeString(String(attachmentCount))
            output.writeInteger(UInt8(ascii: "-"))
        }
        if namespace != "/" {
            output.writeString(namespace)
            output.writeInteger(UInt8(ascii: ","))
        }
        if let ackID { output.writeString(String(ackID)) }
        if let data {
            var bytes: [UInt8] = []
            data.write(into: &bytes)
            output.writeBytes(bytes)
        }
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }
}

@inline(__always)
private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

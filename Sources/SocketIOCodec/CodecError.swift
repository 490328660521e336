/// Why a byte sequence is not a valid Engine.IO or Socket.IO packet.
///
/// A struct over a private enum, as in SwiftNIO, so cases can be added without breaking callers
/// that switch over them; callers compare against the static members.
public struct CodecError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Base: Hashable, Sendable {
        case invalidJSON
        case nestingTooDeep
        case invalidUTF8
        case emptyPacket
        case unknownPacketType
        case invalidBase64
        case invalidNamespace
        case invalidAckID
        case invalidAttachmentCount
        case invalidPayload
        case unexpectedAttachment
        case illegalAttachments
    }

    private let base: Base
    /// Byte offset or other detail, for the log line; not part of equality.
    public let detail: String

    private init(_ base: Base, _ detail: String = "") {
        self.base = base
        self.detail = detail
    }

    public static func == (lhs: CodecError, rhs: CodecError) -> Bool { lhs.base == rhs.base }
    public func hash(into hasher: inout Hasher) { hasher.combine(base) }

    public static let invalidJSON = CodecError(.invalidJSON)
    public static let nestingTooDeep = CodecError(.nestingTooDeep)
    public static let invalidUTF8 = CodecError(.invalidUTF8)
    public static let emptyPacket = CodecError(.emptyPacket)
    public static let unknownPacketType = CodecError(.unknownPacketType)
    public static let invalidBase64 = CodecError(.invalidBase64)
    public static let invalidNamespace = CodecError(.invalidNamespace)
    public static let invalidAckID = CodecError(.invalidAckID)
    public static let invalidAttachmentCount = CodecError(.invalidAttachmentCount)
    /// The packet's data does not have the shape its type requires.
    public static let invalidPayload = CodecError(.invalidPayload)
    /// A binary message arrived while no attachments were expected.
    public static let unexpectedAttachment = CodecError(.unexpectedAttachment)
    /// A binary placeholder that names no attachment of its packet (socket.io-parser's
    /// "illegal attachments").
    public static let illegalAttachments = CodecError(.illegalAttachments)
    static func illegalAttachments(_ why: String) -> CodecError { CodecError(.illegalAttachments, why) }

    static func invalidJSON(at offset: Int) -> CodecError { CodecError(.invalidJSON, "at byte \(offset)") }
    static func invalidPayload(_ why: String) -> CodecError { CodecError(.invalidPayload, why) }

    public var description: String {
        let name: String
        switch base {
        case .invalidJSON: name = "invalid JSON"
        case .nestingTooDeep: name = "JSON nested too deeply"
        case .invalidUTF8: name = "invalid UTF-8"
        case .emptyPacket: name = "empty packet"
        case .unknownPacketType: name = "unknown packet type"
        case .invalidBase64: name = "invalid base64"
        case .invalidNamespace: name = "invalid namespace"
        case .invalidAckID: name = "invalid ack id"
        case .invalidAttachmentCount: name = "invalid attachment count"
        case .invalidPayload: name = "invalid payload"
        case .unexpectedAttachment: name = "unexpected binary attachment"
        case .illegalAttachments: name = "illegal attachments"
        }
        return detail.isEmpty ? name : "\(name) (\(detail))"
    }
}

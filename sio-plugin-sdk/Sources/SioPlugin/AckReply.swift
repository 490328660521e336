import CSioPlugin
import Foundation

/// How `Socket.emitWithAck` ended.
public enum AckReply {
    /// The client answered.
    case answered(Answer)
    /// The timeout passed first.
    case timedOut
    /// The socket disconnected first.
    case disconnected
}

/// A client's answer to `emitWithAck`.
public struct Answer {
    /// The arguments, decoded by JSONSerialization.
    public let arguments: [Any]
    public let argumentsJSON: String
    public let attachments: [[UInt8]]

    /// Argument `index` decoded as `T`.
    public func decode<T: Decodable>(_ type: T.Type, at index: Int = 0) throws -> T {
        try JSON.decodeArgument(arguments, at: index, as: type)
    }
}

/// The Swift closure behind one `emit_with_ack`, retained until its reply.
final class AckBox {
    let reply: @Sendable (Socket?, AckReply) -> Void
    init(_ reply: @escaping @Sendable (Socket?, AckReply) -> Void) { self.reply = reply }
}

/// The host calls this once per `emit_with_ack` (or never, when the version is replaced).
func ackReplyCallback(_ reply: UnsafePointer<sio_ack_reply>?, _ userData: UnsafeMutableRawPointer?) {
    guard let userData else { return }
    let box = Unmanaged<AckBox>.fromOpaque(userData).takeRetainedValue()
    guard let reply, let api = Plugin.current?.api else { return }
    let r = reply.pointee
    switch r.status {
    case SIO_OK:
        let answer = Answer(arguments: (JSON.decode(r.args_json) as? [Any]) ?? [], argumentsJSON: r.args_json.string,
                            attachments: (0..<r.attachment_count).map { r.attachments[$0].bytes })
        box.reply(Socket(reply: reply, api: api), .answered(answer))
    case SIO_ERR_TIMEOUT:
        box.reply(Socket(reply: reply, api: api), .timedOut)
    default:
        box.reply(nil, .disconnected)
    }
}

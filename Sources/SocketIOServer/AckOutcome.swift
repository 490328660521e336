import NIOCore
import SocketIOCodec

/// How an emit that asked for the client's acknowledgement ended.
public enum AckOutcome: Sendable {
    /// The client answered with these arguments.
    case answered([JSONValue], [ByteBuffer])
    /// The timeout passed first.
    case timedOut
    /// The socket disconnected first.
    case disconnected
}

/// An acknowledgement the server waits for, with its timeout if it has one. On the socket's
/// loop only.
struct PendingAck {
    let call: @Sendable (AckOutcome) -> Void
    var timeout: Scheduled<Void>?
}

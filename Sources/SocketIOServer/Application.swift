import NIOCore
import SocketIOCodec

/// The application logic the server core calls: the seven events of docs/events.md.
///
/// The core knows nothing of plugins; the plugin host is one implementation of this protocol and
/// the interop test server another. All calls for one socket happen on that socket's event loop,
/// one at a time, in the order things happened on the wire.
public protocol Application: Sendable {
    /// A client's CONNECT to a namespace. Refusing sends CONNECT_ERROR with the message;
    /// `.later` waits for `Socket.completeConnect`.
    func connect(_ socket: Socket, auth: JSONValue?) -> ConnectDecision
    /// Every event the client emits except the reserved channel events. `.later` holds the
    /// socket's next packets until `Socket.completeMessage`.
    func message(_ socket: Socket, event: IncomingEvent) -> MessageDecision
    /// A `__subscribe__` request, after the socket joined; refusing takes it out again, and
    /// `.later` takes it out until `Socket.completeSubscribe` accepts.
    func subscribe(_ socket: Socket, channel: String) -> SubscribeDecision
    /// Before the socket leaves a channel, whatever the cause.
    func unsubscribe(_ socket: Socket, channel: String)
    /// A handler failed, the client sent an invalid packet, or a send failed.
    func error(_ socket: Socket, error: SocketError)
    /// The client went away; channels are still joined at this point.
    func disconnect(_ socket: Socket, reason: DisconnectReason)
    /// Last call for this socket, exactly once, after it left every channel.
    func finish(_ socket: Socket)
    /// At shutdown, once every socket heard its end and before the event loops stop: what the
    /// application still has to do with those ends (an isolated plugin's runner handling the
    /// last finishes) is waited for, up to `timeout`.
    func settle(timeout: Duration) async
}

extension Application {
    public func connect(_ socket: Socket, auth: JSONValue?) -> ConnectDecision { .accept }
    public func message(_ socket: Socket, event: IncomingEvent) -> MessageDecision { .handled }
    public func subscribe(_ socket: Socket, channel: String) -> SubscribeDecision { .accept }
    public func unsubscribe(_ socket: Socket, channel: String) {}
    public func error(_ socket: Socket, error: SocketError) {}
    public func disconnect(_ socket: Socket, reason: DisconnectReason) {}
    public func finish(_ socket: Socket) {}
    public func settle(timeout: Duration) async {}
}

/// The application's answer to a CONNECT.
///
/// `.later` lets it decide off the event loop (a token checked against a database): the
/// socket waits, unacknowledged, until `Socket.completeConnect`. Only the application can end
/// that wait, so it owns the timeout; a transport that closes meanwhile still ends in `finish`.
public enum ConnectDecision: Sendable, Equatable {
    case accept
    /// Sent to the client as CONNECT_ERROR `{"message": message, "data": data}`.
    case refuse(message: String, data: JSONValue? = nil)
    case later
}

/// The application's answer to a `__subscribe__`; `.later` as for `ConnectDecision`, ended by
/// `Socket.completeSubscribe`. A subscription being decided receives nothing from the channel.
public enum SubscribeDecision: Sendable, Equatable {
    case accept
    case refuse(reason: String)
    case later
}

/// Whether the application finished with a client's event when `message` returned.
///
/// `.later` keeps the per-socket order of docs/events.md when a handler finishes off the loop:
/// the socket's next packets wait, in order, until `Socket.completeMessage`.
public enum MessageDecision: Sendable, Equatable {
    case handled
    case later
}

/// An event as the client emitted it.
public struct IncomingEvent: Sendable {
    public var name: String
    /// The arguments after the event name; binary arguments appear as Socket.IO placeholders
    /// `{"_placeholder":true,"num":N}` indexing `attachments`.
    public var arguments: [JSONValue]
    public var attachments: [ByteBuffer]
    /// Present when the client waits for an acknowledgement; answer with `Socket.ack`.
    public var ackID: Int?

    public init(name: String, arguments: [JSONValue], attachments: [ByteBuffer] = [], ackID: Int? = nil) {
        self.name = name
        self.arguments = arguments
        self.attachments = attachments
        self.ackID = ackID
    }
}

/// Why a socket was disconnected, with the reason strings of the reference server.
public enum DisconnectReason: String, Sendable, CaseIterable {
    case clientNamespaceDisconnect = "client namespace disconnect"
    case serverNamespaceDisconnect = "server namespace disconnect"
    case transportClose = "transport close"
    case transportError = "transport error"
    case pingTimeout = "ping timeout"
    case parseError = "parse error"
    case serverShutdown = "server shutting down"
    case forcedClose = "forced close"
    /// More than `maxOutboundBytes` waited for the client: it does not read.
    case slowConsumer = "slow consumer"
    /// It kept sending past `--max-events-per-second`.
    case rateLimited = "rate limited"
}

/// Errors reported to `Application.error`.
public struct SocketError: Error, Sendable, CustomStringConvertible {
    private enum Base: Sendable {
        case invalidPacket(String)
        case handlerFailed(String)
        case sendFailed(String)
        case rateLimited
        case heldOverflow(Int)
    }

    private let base: Base

    public static func invalidPacket(_ detail: String) -> SocketError { .init(base: .invalidPacket(detail)) }
    public static func handlerFailed(_ detail: String) -> SocketError { .init(base: .handlerFailed(detail)) }
    public static func sendFailed(_ detail: String) -> SocketError { .init(base: .sendFailed(detail)) }
    /// Events past `--max-events-per-second` are dropped; raised once per run of drops.
    public static let rateLimited = SocketError(base: .rateLimited)
    /// More than `limit` packets waited behind an event the application finishes later; the
    /// ones past it were dropped. Raised once per wait.
    public static func heldOverflow(limit: Int) -> SocketError { .init(base: .heldOverflow(limit)) }

    public var description: String {
        switch base {
        case .invalidPacket(let d): return "invalid packet: \(d)"
        case .handlerFailed(let d): return d
        case .sendFailed(let d): return "send failed: \(d)"
        case .rateLimited: return "rate limited"
        case .heldOverflow(let limit):
            return "events dropped: more than \(limit) waited behind an event a handler has not finished"
        }
    }
}

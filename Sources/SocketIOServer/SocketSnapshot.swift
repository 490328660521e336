import Foundation

/// One socket as the operator sees it (`sio sockets`), taken on the socket's loop.
public struct SocketSnapshot: Sendable {
    public var id: String
    public var namespace: String
    /// `websocket` or `polling`.
    public var transport: String
    public var remoteAddress: String
    public var channels: [String]
    public var connectedAt: Date
}

/// A channel and how many sockets are in it (`sio channels`).
public struct ChannelCount: Sendable {
    public var namespace: String
    public var channel: String
    public var members: Int
}

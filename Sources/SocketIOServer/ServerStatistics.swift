/// What the server is doing, for the admin endpoint's `/stats`.
public struct ServerStatistics: Sendable {
    /// Engine.IO sessions open now.
    public var sessions: Int
    /// Sockets connected now, by namespace.
    public var sockets: [String: Int]
    /// Sockets disconnected since start, by reason (every reason, zero included).
    public var disconnects: [DisconnectReason: Int]
}

/// Everything `sio serve` can be told, with its defaults (docs/configuration.md).
///
/// A plain `Sendable` value so that it can be built by the CLI, by tests, or by an embedding
/// program, and handed to the server whole.
public struct ServerConfiguration: Sendable {
    /// Interface to bind. Loopback by default: exposing the server is a deliberate act.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 asks the kernel for a free one (tests use this).
    public var port: Int = 8000
    /// Where Engine.IO listens. Always normalised to start and end with `/`.
    public var path: String = "/socket.io/" {
        didSet { path = Self.normalise(path) }
    }
    /// Namespaces clients may connect to besides `/`, which always exists.
    public var namespaces: Set<String> = ["/"]
    /// Milliseconds between server pings.
    public var pingInterval: Int64 = 25_000
    /// Milliseconds the client has to answer a ping before the session is closed.
    public var pingTimeout: Int64 = 20_000
    /// Largest Engine.IO message or polling body, in bytes, accepted from a client.
    public var maxPayload: Int = 1_000_000
    /// Milliseconds a client may hold a transport open without a Socket.IO CONNECT.
    public var connectTimeout: Int64 = 45_000
    /// Origins allowed by CORS; `*` allows any. Empty: no CORS headers.
    public var corsOrigins: [String] = []
    /// Directory served at `/` for everything outside `path`; nil serves nothing there.
    public var staticDirectory: String?
    /// Channels one socket may be in at once; a `__subscribe__` past it is refused.
    public var maxChannelsPerSocket: Int = 100
    /// The official browser client (socket.io.min.js 4.8.1), served with the channels
    /// extension at `<path>socket.io.js`.
    public var clientScriptPath: String? = ".cache/client/socket.io.min.js"
    /// Peers (IP addresses) whose `X-Forwarded-For` is believed: a reverse proxy such as nginx.
    /// From anyone else the header is ignored, so clients cannot forge their address.
    public var trustedProxies: Set<String> = []
    /// Event-loop threads; defaults to one per core.
    public var threads: Int = System.coreCount
    /// Connections the server holds at once (nil: no limit); one more is answered 503.
    public var maxConnections: Int?
    /// Connections one client address holds at once (the `X-Forwarded-For` of a trusted proxy,
    /// else the peer; nil: no limit); one more is answered 429.
    public var maxConnectionsPerAddress: Int?
    /// Events one socket may send a second (nil: no limit), with `eventBurst` at once (default:
    /// the rate). Past it events are dropped with `on_error` "rate limited"; a socket that keeps
    /// sending 1.5 times the rate for a few seconds is disconnected ("rate limited").
    public var maxEventsPerSecond: Int?
    public var eventBurst: Int?
    /// Bytes that may wait to be sent to one client (written to its WebSocket but not taken by
    /// the kernel, or queued for its next long-poll); past it the client is disconnected as a
    /// `slow consumer`, so one that stops reading cannot grow the server's memory.
    public var maxOutboundBytes: Int = 1 << 20
    /// How long a connection may take to send a complete request head, and may stay idle
    /// between requests on keep-alive; past it the connection is closed. A parked long-poll and
    /// a WebSocket are not idle.
    public var headerTimeout: Duration = .seconds(10)
    /// How long a graceful shutdown waits for every session to finish (`on_disconnect`,
    /// `on_finish`); sessions on a loop stalled past it are abandoned and the server exits
    /// with an error.
    public var shutdownTimeout: Duration = .seconds(10)
    /// A loop that has not run a task for this long is stalled: new connections go elsewhere.
    public var loopStallThreshold: Duration = .milliseconds(500)
    /// Counts traffic, sessions and disconnects through swift-metrics (whichever backend the
    /// program bootstrapped; `sio` exports them to Prometheus). Off saves a few adds per packet.
    public var metrics: Bool = true
    /// Connection state recovery (socket.io's `maxDisconnectionDuration`): a client whose
    /// transport is lost and who comes back within this long gets its socket back — id,
    /// channels, context — and every message it missed. Nil: off.
    public var recoveryWindow: Duration?
    /// Bytes of recent messages kept for recovery per channel (its broadcasts, kept once for
    /// all subscribers) and per socket (what else it is sent), each counted whole; a client that
    /// missed more gets a new socket.
    public var recoveryBuffer: Int = 256 * 1024

    public init() {}

    static func normalise(_ path: String) -> String {
        var p = path
        if !p.hasPrefix("/") { p = "/" + p }
        if !p.hasSuffix("/") { p += "/" }
        return p
    }
}

import NIOCore

import CSioPlugin
import SocketIOCodec
import SocketIOServer

/// One event being delivered. Host functions reach the socket, the arena and the handler's
/// reason through it; handlers hold it as a `sio_socket *` issued by `DispatchThread`, which
/// resolves only on the event's thread and only until the event's dispatch ends.
final class EventScope {
    let socket: Socket
    unowned let host: PluginHost
    let arena = CArena()
    var reason: String?
    /// The plugin whose handler runs now: what `emit_with_ack` ties its callback to.
    var plugin: LoadedPlugin?
    /// Set by `DispatchThread.open`: what makes this scope's handle unique.
    var serial: UInt64 = 0
    /// on_connect, on_subscribe, on_message: handlers may `defer` (ABI 1.3).
    var deferrable = false
    var kind = SIO_EVENT_CONNECT
    var ackID: Int?
    /// Made by the event's first `defer`.
    var pending: PendingEvent?
    /// The ticket the running handler took, 0 for none.
    var handlerTicket: sio_ticket = 0

    init(socket: Socket, host: PluginHost) {
        self.socket = socket
        self.host = host
    }

    /// The scope behind a handle, while its event is being delivered on the calling thread.
    static func from(_ handle: OpaquePointer?) -> EventScope? {
        DispatchThread.scope(for: handle)
    }

    /// JSON the host itself wrote into this event's buffers, by address and length. The buffers
    /// are host-owned and read-only for the event, so the same address and length are the same
    /// text: a handler passing a piece of `args_json` back is answered without a parse.
    private var knownJSON: [(address: UnsafePointer<CChar>, length: Int, value: JSONValue)] = []

    func remember(_ value: JSONValue, at buffer: sio_buf) {
        guard let address = buffer.ptr else { return }
        knownJSON.append((address, buffer.len, value))
    }

    /// The JSON value in `buffer`, or nil if it is not valid JSON.
    func json(_ buffer: sio_buf) -> JSONValue? {
        if let address = buffer.ptr, let known = knownJSON.first(where: { $0.address == address && $0.length == buffer.len }) {
            return known.value
        }
        return try? JSONValue(parsing: buffer.raw)
    }
}

import CSioPlugin

/// Collects handlers, in the seed's style: `on.message(channel: "^room-") { request, socket, context, message in … }`.
///
/// Throwing `Refuse` from `connect` or `subscribe` refuses; any other error raises `on_error`.
/// Handlers are `@Sendable`: the host runs them on the socket's thread, handlers of different
/// sockets at once, so what they share lives in `PluginState` or another `Sendable` home.
public struct Handlers {
    var registrations: [(kind: sio_event_kind, pattern: String?, handler: AnyHandler)] = []

    public typealias Basic = @Sendable (Request, Socket, Context) throws -> Void

    private mutating func add(_ kind: sio_event_kind, _ channel: String?, _ handler: AnyHandler) {
        registrations.append((kind, channel, handler))
    }

    /// Once per connection. It cannot be bound to a channel.
    public mutating func connect(_ handler: @escaping @Sendable (Request, Socket, Context, _ auth: Any?) throws -> Void) {
        add(SIO_EVENT_CONNECT, nil, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket), JSON.decode(event.auth_json))
        })
    }

    public mutating func message(channel: String? = nil, _ handler: @escaping @Sendable (Request, Socket, Context, Message) throws -> Void) {
        add(SIO_EVENT_MESSAGE, channel, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket), Message(event.message!.pointee))
        })
    }

    /// Messages whose event name is `name` only (`socket.emit(name, …)` in the client), as
    /// socket.io's `socket.on(name, …)`; `message` receives every event. The name is compared
    /// before anything is decoded.
    public mutating func event(_ name: String, channel: String? = nil,
                               _ handler: @escaping @Sendable (Request, Socket, Context, Message) throws -> Void) {
        let expected = Array(name.utf8)
        add(SIO_EVENT_MESSAGE, channel, AnyHandler { event, socket in
            guard event.message!.pointee.event.equals(expected) else { return }
            try handler(Request(event.request), socket, Context(socket), Message(event.message!.pointee))
        })
    }

    public mutating func subscribe(channel: String? = nil, _ handler: @escaping @Sendable (Request, Socket, Context, String) throws -> Void) {
        add(SIO_EVENT_SUBSCRIBE, channel, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket), event.channel.string)
        })
    }

    public mutating func unsubscribe(channel: String? = nil, _ handler: @escaping @Sendable (Request, Socket, Context, String) throws -> Void) {
        add(SIO_EVENT_UNSUBSCRIBE, channel, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket), event.channel.string)
        })
    }

    public mutating func error(channel: String? = nil, _ handler: @escaping @Sendable (Request, Socket, Context, String) throws -> Void) {
        add(SIO_EVENT_ERROR, channel, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket), event.error.string)
        })
    }

    public mutating func disconnect(channel: String? = nil, _ handler: @escaping Basic) {
        add(SIO_EVENT_DISCONNECT, channel, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket))
        })
    }

    public mutating func finish(channel: String? = nil, _ handler: @escaping Basic) {
        add(SIO_EVENT_FINISH, channel, AnyHandler { event, socket in
            try handler(Request(event.request), socket, Context(socket))
        })
    }
}

struct AnyHandler {
    /// An async handler's start: the values it needs, copied out of the event, ready to run
    /// later; nil when it does not apply (another event name).
    typealias Later = (sio_event, RemoteSocket) -> (@Sendable () async throws -> Void)?

    let call: (sio_event, Socket) throws -> Void
    let later: Later?

    init(_ call: @escaping (sio_event, Socket) throws -> Void) {
        self.call = call
        self.later = nil
    }

    init(later: @escaping Later) {
        self.call = { _, _ in }
        self.later = later
    }
}

/// Thrown by `connect` or `subscribe` handlers to refuse; the client is told `reason`.
public struct Refuse: Error {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

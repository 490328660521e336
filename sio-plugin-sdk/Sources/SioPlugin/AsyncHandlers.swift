import CSioPlugin
import Foundation

/// Handlers that finish later (ABI 1.3), as `async throws` functions: the SDK defers the event,
/// runs the handler as a task off the socket's thread, and completes the event with what it
/// did. The socket waits meanwhile — a connection is not acknowledged, a subscription hears
/// nothing of its channel, the socket's next events are held in order — so an `await` on a
/// database or an HTTP service costs no network thread.
///
///     on.connect { request, socket, auth async throws in
///         guard try await tokens.isValid(auth.decode(Credentials.self).token) else { throw Refuse("invalid token") }
///     }
///
/// They take a `RemoteSocket`, reached by id from any thread, not the event's `Socket`, which
/// is valid during the C call only. On a host older than 1.3 the event fails with a reason.
extension Handlers {
    /// Returning accepts; `Refuse` refuses with its reason; any other error refuses with its
    /// description. The socket is not connected while this runs: send to it afterwards.
    public mutating func connect(_ handler: @escaping @Sendable (Request, RemoteSocket, _ auth: Payload) async throws -> Void) {
        registrations.append((SIO_EVENT_CONNECT, nil, AnyHandler(later: { event, socket in
            let request = Request(event.request)
            let auth = Payload(event.auth_json)
            return { try await handler(request, socket, auth) }
        })))
    }

    /// Every event; `socket.ack(message, …)` answers the client's acknowledgement when the
    /// handler returns. An error raises on_error.
    public mutating func message(channel: String? = nil,
                                 _ handler: @escaping @Sendable (Request, RemoteSocket, Message) async throws -> Void) {
        registrations.append((SIO_EVENT_MESSAGE, channel, AnyHandler(later: { event, socket in
            let request = Request(event.request)
            let message = Message(event.message!.pointee)
            return { try await handler(request, socket, message) }
        })))
    }

    /// Events named `name` only; others are not deferred.
    public mutating func event(_ name: String, channel: String? = nil,
                               _ handler: @escaping @Sendable (Request, RemoteSocket, Message) async throws -> Void) {
        let expected = Array(name.utf8)
        registrations.append((SIO_EVENT_MESSAGE, channel, AnyHandler(later: { event, socket in
            guard event.message!.pointee.event.equals(expected) else { return nil }
            let request = Request(event.request)
            let message = Message(event.message!.pointee)
            return { try await handler(request, socket, message) }
        })))
    }

    /// Returning accepts the subscription; `Refuse` refuses it; any other error raises on_error
    /// (and accepts, as for a handler that fails at once).
    public mutating func subscribe(channel: String? = nil,
                                   _ handler: @escaping @Sendable (Request, RemoteSocket, String) async throws -> Void) {
        registrations.append((SIO_EVENT_SUBSCRIBE, channel, AnyHandler(later: { event, socket in
            let request = Request(event.request)
            let name = event.channel.string
            return { try await handler(request, socket, name) }
        })))
    }
}

/// The socket an async handler works for, reached by id from any thread: sends go out of band
/// and reach the client if it is still there (`SioError.noSocket` otherwise).
public final class RemoteSocket: Sendable {
    /// The id the client sees as `socket.id`.
    public let id: String
    public let namespace: String
    private let answer = AnswerBox()

    init(id: String, namespace: String) {
        self.id = id
        self.namespace = namespace
    }

    /// Sends `message` as the event "message", as `Socket.send` does.
    public func send(_ message: Any) throws {
        try Plugin.send(sessionID: id, message, namespace: namespace)
    }

    /// Emits any event, as `Socket.emit` does.
    public func emit(_ event: String, _ arguments: Any...) throws {
        try Plugin.emit(event, arguments: arguments, toSocket: id, namespace: namespace)
    }

    /// Answers the message's acknowledgement when the handler returns (the first answer wins;
    /// nothing is sent if the client did not ask, or if the handler throws).
    public func ack(_ message: Message, _ arguments: Any...) throws {
        guard message.ackID != nil else { return }
        answer.set(try JSON.encode(arguments))
    }

    var ackJSON: [UInt8] { answer.value }
}

/// The ack an async handler gave, set from its task and read when it ends.
private final class AnswerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var json: [UInt8] = []

    func set(_ bytes: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        if json.isEmpty { json = bytes }
    }

    var value: [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return json
    }
}

/// JSON a client sent (a connection's `auth`), decoded by JSONSerialization.
///
/// `@unchecked Sendable`: immutable, and what JSONSerialization returns without
/// `.mutableContainers` is immutable too.
public struct Payload: @unchecked Sendable {
    /// `[String: Any]`, `[Any]`, a string, a number, `NSNull`, or nil when nothing was sent.
    public let value: Any?
    public let json: String

    init(_ buf: sio_buf) {
        value = JSON.decode(buf)
        json = buf.string
    }

    /// The payload decoded as `T`: `let credentials = try auth.decode(Credentials.self)`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard let value else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "nothing was sent"))
        }
        return try JSON.decodeArgument([value], at: 0, as: type)
    }
}

extension Plugin {
    /// Defers the event and starts the handler's task; the C handler returns what this does.
    static func start(_ later: AnyHandler.Later, event: UnsafePointer<sio_event>, api: UnsafePointer<sio_host_api>) -> sio_status {
        let handle = event.pointee.socket
        guard api.pointee.struct_size > MemoryLayout<sio_host_api>.offset(of: \.complete)! else {
            withBuf("async handlers need a host with ABI 1.3") { _ = api.pointee.set_reason!(handle, $0) }
            return SIO_FAIL
        }
        let socket = RemoteSocket(id: event.pointee.socket_id.string, namespace: event.pointee.nsp.string)
        guard let work = later(event.pointee, socket) else { return SIO_OK }
        var ticket: sio_ticket = 0
        guard api.pointee.defer!(handle, &ticket) == SIO_OK else {
            withBuf("this event cannot be finished later") { _ = api.pointee.set_reason!(handle, $0) }
            return SIO_FAIL
        }
        Task {
            let status: sio_status
            var reason = ""
            do {
                try await work()
                status = SIO_OK
            } catch let refusal as Refuse {
                status = SIO_REFUSE
                reason = refusal.reason
            } catch {
                status = SIO_FAIL
                reason = String(describing: error)
            }
            complete(ticket, status, reason: reason, ack: status == SIO_OK ? socket.ackJSON : [])
        }
        return SIO_PENDING
    }

    private static func complete(_ ticket: sio_ticket, _ status: sio_status, reason: String, ack: [UInt8]) {
        guard let plugin = current, let api = plugin.api else { return }
        let result = withBuf(reason) { reason in
            ack.withUnsafeBufferPointer { bytes in
                let json = sio_buf(ptr: bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: bytes.count)
                return api.pointee.complete!(plugin.handle, ticket, status, reason, json)
            }
        }
        if result != SIO_OK, result != SIO_ERR_STATE {
            log("an async handler's completion was refused (status \(result))", level: .warning)
        }
    }
}

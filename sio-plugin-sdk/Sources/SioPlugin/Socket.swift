import CSioPlugin
import Foundation

/// The socket an event (or an acknowledgement's reply) is about. Valid during the handler call
/// only.
public struct Socket {
    let handle: OpaquePointer?
    let api: UnsafePointer<sio_host_api>
    private let idBuffer: sio_buf
    private let namespaceBuffer: sio_buf

    init(event: UnsafePointer<sio_event>, api: UnsafePointer<sio_host_api>) {
        handle = event.pointee.socket
        self.api = api
        idBuffer = event.pointee.socket_id
        namespaceBuffer = event.pointee.nsp
    }

    init(reply: UnsafePointer<sio_ack_reply>, api: UnsafePointer<sio_host_api>) {
        handle = reply.pointee.socket
        self.api = api
        idBuffer = reply.pointee.socket_id
        namespaceBuffer = reply.pointee.nsp
    }

    /// The id the client sees as `socket.id`; `Plugin.send(sessionID:)` takes it.
    public var id: String { idBuffer.string }
    public var namespace: String { namespaceBuffer.string }

    /// Sends `message` to this client as a "message" event: any `Encodable` value, or what
    /// JSONSerialization takes (dictionaries, arrays, strings, numbers, `NSNull`), mixed freely.
    public func send(_ message: Any) throws {
        try JSON.with(message) { json in api.pointee.send!(handle, json) }
    }

    /// To every other socket of the namespace.
    public func broadcast(_ message: Any) throws {
        try JSON.with(message) { json in api.pointee.broadcast!(handle, json) }
    }

    /// To the other subscribers of `channel`, or of every channel this socket is in.
    public func broadcastChannel(_ message: Any, channel: String? = nil) throws {
        try JSON.with(message) { json in withBuf(channel ?? "") { api.pointee.broadcast_channel!(handle, json, $0) } }
    }

    public func sendAndBroadcast(_ message: Any) throws {
        try JSON.with(message) { json in api.pointee.send_and_broadcast!(handle, json) }
    }

    public func sendAndBroadcastChannel(_ message: Any, channel: String? = nil) throws {
        try JSON.with(message) { json in withBuf(channel ?? "") { api.pointee.send_and_broadcast_channel!(handle, json, $0) } }
    }

    /// Emits any event; each argument as `send` takes it.
    public func emit(_ event: String, _ arguments: Any...) throws {
        try JSON.with(arguments) { json in withBuf(event) { api.pointee.emit!(handle, $0, json, nil, 0) } }
    }

    /// Any event to many (ABI 1.2): to the subscribers of `channel`, or to every socket of the
    /// namespace when it is nil, without this socket unless `includingSelf` (socket.io's
    /// `socket.to(channel).emit`, `socket.broadcast.emit`, and `io.to(channel).emit`).
    /// Throws `SioError.unsupported` on a host older than ABI 1.2.
    public func emit(_ event: String, _ arguments: Any..., toChannel channel: String?, includingSelf: Bool = false) throws {
        guard api.pointee.struct_size > MemoryLayout<sio_host_api>.offset(of: \.emit_to)! else { throw SioError.unsupported }
        try JSON.with(arguments) { json in
            withBuf(channel ?? "") { channel in
                withBuf(event) { api.pointee.emit_to!(handle, channel, $0, json, nil, 0, includingSelf ? SIO_EMIT_INCLUDE_SELF : 0) }
            }
        }
    }

    /// Emits `event` and asks the client to acknowledge it (ABI 1.2; socket.io's `emitWithAck`).
    /// `reply` runs once, later, on the socket's thread: with the client's answer, with
    /// `.timedOut` after `timeout` (nil: none), or with `.disconnected` when the socket goes
    /// first; the `Socket` it gets (nil once disconnected) is valid during that call. Not
    /// called if this plugin version is replaced first.
    public func emitWithAck(_ event: String, _ arguments: Any..., timeout: Duration? = nil,
                            reply: @escaping @Sendable (Socket?, AckReply) -> Void) throws {
        guard api.pointee.struct_size > MemoryLayout<sio_host_api>.offset(of: \.emit_with_ack)! else { throw SioError.unsupported }
        let milliseconds = timeout.map { UInt32(clamping: max(1, $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000)) } ?? 0
        let box = Unmanaged.passRetained(AckBox(reply)).toOpaque()
        do {
            try JSON.with(arguments) { json in
                withBuf(event) { api.pointee.emit_with_ack!(handle, $0, json, nil, 0, milliseconds, ackReplyCallback, box) }
            }
        } catch {
            Unmanaged<AckBox>.fromOpaque(box).release()
            throw error
        }
    }

    /// Answers a message's acknowledgement.
    public func ack(_ message: Message, _ arguments: Any...) throws {
        guard let id = message.ackID else { return }
        try JSON.with(arguments) { json in api.pointee.ack!(handle, Int64(id), json, nil, 0) }
    }

    public func subscribe(_ channel: String) throws {
        try SioError.check(withBuf(channel) { api.pointee.subscribe!(handle, $0) })
    }

    public func unsubscribe(_ channel: String) throws {
        try SioError.check(withBuf(channel) { api.pointee.unsubscribe!(handle, $0) })
    }

    public func disconnect() throws {
        try SioError.check(api.pointee.disconnect!(handle))
    }
}

/// The per-socket key/value store, shared by every handler of the socket and kept by the host
/// across reloads.
public struct Context {
    let socket: Socket

    init(_ socket: Socket) { self.socket = socket }

    public subscript(key: String) -> String? {
        get {
            var out = sio_buf(ptr: nil, len: 0)
            let status = withBuf(key) { socket.api.pointee.context_get!(socket.handle, $0, &out) }
            return status == SIO_OK ? out.string : nil
        }
        nonmutating set {
            _ = withBuf(key) { key in
                if let newValue {
                    return withBuf(newValue) { socket.api.pointee.context_set!(socket.handle, key, $0) }
                }
                return socket.api.pointee.context_delete!(socket.handle, key)
            }
        }
    }
}

/// What a client emitted.
///
/// `@unchecked Sendable` (an async handler's task takes it): immutable, and what
/// JSONSerialization returns without `.mutableContainers` is immutable too.
public struct Message: @unchecked Sendable {
    /// The event name; `socket.send(x)` arrives as "message".
    public let event: String
    /// The arguments, decoded by JSONSerialization (binary arguments as placeholder objects).
    public let arguments: [Any]
    public let argumentsJSON: String
    public let attachments: [[UInt8]]
    public let ackID: Int?

    init(_ message: sio_message) {
        event = message.event.string
        argumentsJSON = message.args_json.string
        arguments = (JSON.decode(message.args_json) as? [Any]) ?? []
        attachments = (0..<message.attachment_count).map { message.attachments[$0].bytes }
        ackID = message.ack_id >= 0 ? Int(message.ack_id) : nil
    }

    /// Argument `index` decoded as `T`: `let move = try message.decode(Move.self)`.
    public func decode<T: Decodable>(_ type: T.Type, at index: Int = 0) throws -> T {
        try JSON.decodeArgument(arguments, at: index, as: type)
    }
}

/// The HTTP request that opened the session.
public struct Request: Sendable {
    public let method: String
    public let path: String
    public let query: String
    public let remoteAddress: String
    public let headers: [(name: String, value: String)]

    init(_ request: UnsafePointer<sio_request>?) {
        let r = request!.pointee
        method = r.method.string
        path = r.path.string
        query = r.query.string
        remoteAddress = r.remote_addr.string
        headers = (0..<r.header_count).map { (r.headers[$0].name.string, r.headers[$0].value.string) }
    }

    public func header(_ name: String) -> String? {
        headers.first(where: { $0.name.lowercased() == name.lowercased() })?.value
    }
}

enum JSON {
    /// What JSONSerialization takes goes through it, in one pass (with `.fragmentsAllowed` it
    /// throws on what it cannot write, it does not trap); then an array (the arguments of
    /// `emit`) element by element, and an `Encodable` value through JSONEncoder, so the two
    /// can be mixed. Validating first cost the Swift relay a quarter of its CPU per message.
    static func encode(_ value: Any) throws -> [UInt8] {
        if value is NSNull { return Array("null".utf8) }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
            return Array(data)
        }
        if let array = value as? [Any] {
            var bytes: [UInt8] = [UInt8(ascii: "[")]
            for (index, element) in array.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes += try encode(element)
            }
            return bytes + [UInt8(ascii: "]")]
        }
        if let encodable = value as? any Encodable {
            return Array(try JSONEncoder().encode(encodable))
        }
        throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(type(of: value)) is neither Encodable nor JSON"))
    }

    static func decodeArgument<T: Decodable>(_ arguments: [Any], at index: Int, as type: T.Type) throws -> T {
        guard arguments.indices.contains(index) else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "no argument \(index)"))
        }
        let data = try JSONSerialization.data(withJSONObject: arguments[index], options: [.fragmentsAllowed])
        return try JSONDecoder().decode(T.self, from: data)
    }

    static func decode(_ buf: sio_buf) -> Any? {
        guard let ptr = buf.ptr, buf.len > 0 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(bytes: ptr, count: buf.len), options: [.fragmentsAllowed])
    }

    static func with(_ value: Any, _ body: (sio_buf) -> sio_status) throws {
        let bytes = try encode(value)
        try SioError.check(bytes.withUnsafeBufferPointer { body(sio_buf(ptr: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), len: $0.count)) })
    }
}

func withJSON(_ value: Any, _ body: (sio_buf) -> sio_status) throws -> sio_status {
    let bytes = try JSON.encode(value)
    return bytes.withUnsafeBufferPointer { body(sio_buf(ptr: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), len: $0.count)) }
}

func withBuf<R>(_ string: String, _ body: (sio_buf) -> R) -> R {
    var string = string
    return string.withUTF8 { body(sio_buf(ptr: $0.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: $0.count)) }
}

extension sio_buf {
    func equals(_ bytes: [UInt8]) -> Bool {
        guard len == bytes.count else { return false }
        guard let ptr, len > 0 else { return true }
        return memcmp(ptr, bytes, len) == 0
    }

    var string: String {
        guard let ptr, len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: ptr, count: len), as: UTF8.self)
    }

    var bytes: [UInt8] {
        guard let ptr, len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: ptr, count: len))
    }
}

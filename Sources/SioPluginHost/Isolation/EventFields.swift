import CSioPlugin

/// A `sio_event` as the fields of a `RunnerMessage.event`, and back: the server writes what
/// the in-process dispatch filled, the runner rebuilds a `sio_event` in an arena of its own.
enum EventFields {
    private enum Index: Int, CaseIterable {
        case handlers, socketID, nsp, request, channel, auth, error, reason
        case messageEvent, argsJSON, attachments, ackID
    }

    /// `handlers`: the runner's handler indexes to call, in order. `request`: whether the
    /// socket's request goes too; a runner process keeps it from the socket's first event on
    /// (`RequestCache`), which spares every message the headers.
    static func encode(_ event: sio_event, handlers: [Int], request: Bool) -> [[UInt8]] {
        fields(event, handlers: handlers, request: request).map(\.bytes)
    }

    /// The same, pointing into `event`'s buffers: valid while they are.
    static func fields(_ event: sio_event, handlers: [Int], request: Bool) -> [RunnerMessage.Field] {
        var fields = [RunnerMessage.Field](repeating: .bytes([]), count: Index.allCases.count)
        func set(_ index: Index, _ buf: sio_buf) { fields[index.rawValue] = .raw(buf.raw) }
        fields[Index.handlers.rawValue] = .bytes(handlersField(handlers))
        set(.socketID, event.socket_id)
        set(.nsp, event.nsp)
        if request, let request = event.request?.pointee {
            var parts = [request.method.bytes, request.path.bytes, request.query.bytes, request.remote_addr.bytes]
            for index in 0..<request.header_count {
                parts.append(request.headers[index].name.bytes)
                parts.append(request.headers[index].value.bytes)
            }
            fields[Index.request.rawValue] = .bytes(RunnerMessage.pack(parts))
        }
        set(.channel, event.channel)
        set(.auth, event.auth_json)
        set(.error, event.error)
        set(.reason, event.reason)
        if let message = event.message?.pointee {
            set(.messageEvent, message.event)
            set(.argsJSON, message.args_json)
            if message.attachment_count > 0 {
                fields[Index.attachments.rawValue] = .bytes(RunnerMessage.pack((0..<message.attachment_count).map { message.attachments[$0].bytes }))
            }
            fields[Index.ackID.rawValue] = .bytes(Array(String(message.ack_id).utf8))
        }
        return fields
    }

    /// The handler indexes, two bytes each (little-endian).
    static func handlersField(_ indexes: [Int]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 * indexes.count)
        for index in indexes {
            bytes.append(UInt8(truncatingIfNeeded: index))
            bytes.append(UInt8(truncatingIfNeeded: index >> 8))
        }
        return bytes
    }

    struct Decoded {
        var event: sio_event
        var handlers: [Int]
        var socketID: String
        var namespace: String
    }

    /// The event in `arena`; nil for fields that do not make one (or a request neither sent
    /// nor kept in `requests`).
    static func decode(_ message: RunnerMessage, kind: sio_event_kind, in arena: CArena, requests: RequestCache) -> Decoded? {
        guard message.fieldCount == Index.allCases.count else { return nil }
        let fields = message.fieldSlices
        func field(_ index: Index) -> ArraySlice<UInt8> { fields[index.rawValue] }
        let handlerBytes = Array(field(.handlers))
        guard handlerBytes.count % 2 == 0 else { return nil }
        let handlers = stride(from: 0, to: handlerBytes.count, by: 2).map { Int(handlerBytes[$0]) | Int(handlerBytes[$0 + 1]) << 8 }
        let socketID = String(decoding: field(.socketID), as: UTF8.self)
        // A socket's last event brings its request along and is not kept.
        guard let request = requests.resolve(Array(field(.request)), socketID: socketID, keep: kind != SIO_EVENT_FINISH, eventArena: arena)
        else { return nil }
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.kind = kind
        event.socket_id = arena.buf(field(.socketID))
        event.nsp = arena.buf(field(.nsp))
        event.request = request
        event.channel = arena.buf(field(.channel))
        event.auth_json = arena.buf(field(.auth))
        event.error = arena.buf(field(.error))
        event.reason = arena.buf(field(.reason))
        if kind == SIO_EVENT_MESSAGE {
            var message = sio_message()
            message.struct_size = MemoryLayout<sio_message>.size
            message.event = arena.buf(field(.messageEvent))
            message.args_json = arena.buf(field(.argsJSON))
            let attachments = (RunnerMessage.unpack(Array(field(.attachments))) ?? []).map { arena.buf($0) }
            message.attachments = arena.array(attachments)
            message.attachment_count = attachments.count
            message.ack_id = Int64(String(decoding: field(.ackID), as: UTF8.self)) ?? -1
            event.message = arena.value(message)
        }
        return Decoded(event: event, handlers: handlers, socketID: socketID, namespace: String(decoding: field(.nsp), as: UTF8.self))
    }

    /// A packed request field as a `sio_request` in `arena`; nil for a malformed one.
    fileprivate static func request(_ field: [UInt8], in arena: CArena) -> UnsafePointer<sio_request>? {
        guard let parts = RunnerMessage.unpack(field), parts.count >= 4, parts.count % 2 == 0 else { return nil }
        var request = sio_request()
        request.struct_size = MemoryLayout<sio_request>.size
        request.method = arena.buf(parts[0])
        request.path = arena.buf(parts[1])
        request.query = arena.buf(parts[2])
        request.remote_addr = arena.buf(parts[3])
        let headers = stride(from: 4, to: parts.count, by: 2).map { sio_header(name: arena.buf(parts[$0]), value: arena.buf(parts[$0 + 1])) }
        request.headers = arena.array(headers)
        request.header_count = headers.count
        return arena.value(request)
    }
}

/// The runner's copy of each socket's request, from the socket's first event to the server's
/// `forget` (the socket finished): a request is immutable, so it crosses the socket once.
final class RequestCache {
    private var entries: [String: (arena: CArena, request: UnsafePointer<sio_request>)] = [:]

    var count: Int { entries.count }

    /// The request `field` brings (kept for later events when `keep`, else in `eventArena`),
    /// or the one kept when it brings none.
    func resolve(_ field: [UInt8], socketID: String, keep: Bool, eventArena: CArena) -> UnsafePointer<sio_request>? {
        guard !field.isEmpty else { return entries[socketID]?.request }
        guard keep else { return EventFields.request(field, in: eventArena) }
        let arena = CArena()
        guard let request = EventFields.request(field, in: arena) else { return nil }
        entries[socketID] = (arena, request)
        return request
    }

    func forget(_ socketID: String) {
        entries[socketID] = nil
    }
}

import CSioPlugin

/// A `sio_event` as the fields of a `RunnerMessage.event`, and back: the server writes what
/// the in-process dispatch filled, the runner rebuilds a `sio_event` in an arena of its own.
enum EventFields {
    private enum Index: Int, CaseIterable {
        case handlers, socketID, nsp, method, path, query, remote, headers, channel, auth, error, reason
        case messageEvent, argsJSON, attachments, ackID
    }

    /// `handlers`: the runner's handler indexes to call, in order.
    static func encode(_ event: sio_event, handlers: [Int]) -> [[UInt8]] {
        var fields = [[UInt8]](repeating: [], count: Index.allCases.count)
        fields[Index.handlers.rawValue] = Array(handlers.map(String.init).joined(separator: ",").utf8)
        fields[Index.socketID.rawValue] = event.socket_id.bytes
        fields[Index.nsp.rawValue] = event.nsp.bytes
        if let request = event.request?.pointee {
            fields[Index.method.rawValue] = request.method.bytes
            fields[Index.path.rawValue] = request.path.bytes
            fields[Index.query.rawValue] = request.query.bytes
            fields[Index.remote.rawValue] = request.remote_addr.bytes
            var headers: [[UInt8]] = []
            for index in 0..<request.header_count {
                headers.append(request.headers[index].name.bytes)
                headers.append(request.headers[index].value.bytes)
            }
            fields[Index.headers.rawValue] = RunnerMessage.pack(headers)
        }
        fields[Index.channel.rawValue] = event.channel.bytes
        fields[Index.auth.rawValue] = event.auth_json.bytes
        fields[Index.error.rawValue] = event.error.bytes
        fields[Index.reason.rawValue] = event.reason.bytes
        if let message = event.message?.pointee {
            fields[Index.messageEvent.rawValue] = message.event.bytes
            fields[Index.argsJSON.rawValue] = message.args_json.bytes
            fields[Index.attachments.rawValue] = RunnerMessage.pack((0..<message.attachment_count).map { message.attachments[$0].bytes })
            fields[Index.ackID.rawValue] = Array(String(message.ack_id).utf8)
        }
        return fields
    }

    struct Decoded {
        var event: sio_event
        var handlers: [Int]
        var socketID: String
        var namespace: String
    }

    /// The event in `arena`; nil for fields that do not make one.
    static func decode(_ fields: [[UInt8]], kind: sio_event_kind, in arena: CArena) -> Decoded? {
        guard fields.count == Index.allCases.count else { return nil }
        func field(_ index: Index) -> [UInt8] { fields[index.rawValue] }
        let handlers = String(decoding: field(.handlers), as: UTF8.self).split(separator: ",").compactMap { Int($0) }
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.kind = kind
        event.socket_id = arena.buf(field(.socketID))
        event.nsp = arena.buf(field(.nsp))
        var request = sio_request()
        request.struct_size = MemoryLayout<sio_request>.size
        request.method = arena.buf(field(.method))
        request.path = arena.buf(field(.path))
        request.query = arena.buf(field(.query))
        request.remote_addr = arena.buf(field(.remote))
        let headers = RunnerMessage.unpack(field(.headers)) ?? []
        var pairs: [sio_header] = []
        var index = 0
        while index + 1 < headers.count {
            pairs.append(sio_header(name: arena.buf(headers[index]), value: arena.buf(headers[index + 1])))
            index += 2
        }
        request.headers = arena.array(pairs)
        request.header_count = pairs.count
        event.request = arena.value(request)
        event.channel = arena.buf(field(.channel))
        event.auth_json = arena.buf(field(.auth))
        event.error = arena.buf(field(.error))
        event.reason = arena.buf(field(.reason))
        if kind == SIO_EVENT_MESSAGE {
            var message = sio_message()
            message.struct_size = MemoryLayout<sio_message>.size
            message.event = arena.buf(field(.messageEvent))
            message.args_json = arena.buf(field(.argsJSON))
            let attachments = (RunnerMessage.unpack(field(.attachments)) ?? []).map { arena.buf($0) }
            message.attachments = arena.array(attachments)
            message.attachment_count = attachments.count
            message.ack_id = Int64(String(decoding: field(.ackID), as: UTF8.self)) ?? -1
            event.message = arena.value(message)
        }
        return Decoded(event: event, handlers: handlers, socketID: String(decoding: field(.socketID), as: UTF8.self),
                       namespace: String(decoding: field(.nsp), as: UTF8.self))
    }
}

import CSioPlugin
import Logging
import SocketIOCodec

/// The `sio_host_api` a plugin gets in a runner: the same table and rules as in the server,
/// with each call checked here (handles, JSON, names) and carried out by the server. Calls
/// whose answer the plugin reads — context, unsubscribe, the out-of-band sends — wait for the
/// server; the others are sent and return at once, in order.
enum RunnerHostAPI {
    nonisolated(unsafe) static let table: UnsafePointer<sio_host_api> = {
        var api = sio_host_api()
        api.struct_size = MemoryLayout<sio_host_api>.size
        api.abi_major = SioABI.major
        api.abi_minor = SioABI.minor
        api.register_handler = { plugin, kind, pattern, handler, userData in
            let state = RunnerState.shared
            guard plugin == RunnerState.pluginHandle, let handler else { return SIO_ERR_INVALID }
            guard state.initialising else { return SIO_ERR_STATE }
            // Events name their handlers in two bytes (`EventFields.handlersField`).
            guard state.handlers.count < Int(UInt16.max) else { return SIO_ERR_INVALID }
            // Kinds and patterns are checked by the server, which refuses the load with the reason.
            state.handlers.append((kind, pattern.map { String(cString: $0) }, handler, userData))
            return SIO_OK
        }
        api.set_reason = { socket, reason in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            scope.reason = reason.string ?? "(invalid UTF-8 reason)"
            return SIO_OK
        }
        api.send = { socket, message in forward(.send, socket, json: message) }
        api.broadcast = { socket, message in forward(.broadcast, socket, json: message) }
        api.broadcast_channel = { socket, message, channel in
            guard channel.len == 0 || validChannel(channel) else { return SIO_ERR_INVALID }
            return forward(.broadcastChannel, socket, json: message, channel.bytes)
        }
        api.send_and_broadcast = { socket, message in forward(.sendAndBroadcast, socket, json: message) }
        api.send_and_broadcast_channel = { socket, message, channel in
            guard channel.len == 0 || validChannel(channel) else { return SIO_ERR_INVALID }
            return forward(.sendAndBroadcastChannel, socket, json: message, channel.bytes)
        }
        api.emit = { socket, event, arguments, attachments, count in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, isArray(arguments) else { return SIO_ERR_INVALID }
            RunnerState.shared.post(.emit, event: scope.eventID, [event.bytes, arguments.bytes, packed(attachments, count)])
            return SIO_OK
        }
        api.ack = { socket, id, arguments, attachments, count in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            guard id >= 0, isArray(arguments) else { return SIO_ERR_INVALID }
            RunnerState.shared.post(.ack, event: scope.eventID, [Array(String(id).utf8), arguments.bytes, packed(attachments, count)])
            return SIO_OK
        }
        api.subscribe = { socket, channel in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            guard validChannel(channel) else { return SIO_ERR_INVALID }
            RunnerState.shared.post(.subscribe, event: scope.eventID, [channel.bytes])
            return SIO_OK
        }
        api.unsubscribe = { socket, channel in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            guard validChannel(channel) else { return SIO_ERR_INVALID }
            return sio_status(truncatingIfNeeded: RunnerState.shared.ask(.unsubscribe, event: scope.eventID, [channel.bytes]).status)
        }
        api.disconnect = { socket in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            RunnerState.shared.post(.disconnect, event: scope.eventID, [])
            return SIO_OK
        }
        api.context_set = { socket, key, value in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            RunnerState.shared.post(.contextSet, event: scope.eventID, [key.bytes, value.bytes])
            return SIO_OK
        }
        api.context_get = { socket, key, out in
            guard let scope = RunnerState.shared.scope(for: socket), let out else { return SIO_ERR_STATE }
            let answer = RunnerState.shared.ask(.contextGet, event: scope.eventID, [key.bytes])
            guard answer.status == Int64(SIO_OK) else { return sio_status(truncatingIfNeeded: answer.status) }
            out.pointee = scope.arena.buf(answer.value)
            return SIO_OK
        }
        api.context_delete = { socket, key in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            return sio_status(truncatingIfNeeded: RunnerState.shared.ask(.contextDelete, event: scope.eventID, [key.bytes]).status)
        }
        api.oob_broadcast = { plugin, namespace, message in
            guard isJSON(message) else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobBroadcast, [namespace.bytes, message.bytes])
        }
        api.oob_broadcast_channel = { plugin, namespace, message, channel in
            guard isJSON(message), validChannel(channel) else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobBroadcastChannel, [namespace.bytes, message.bytes, channel.bytes])
        }
        api.oob_send = { plugin, namespace, socketID, message in
            guard isJSON(message), socketID.string != nil else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobSend, [namespace.bytes, socketID.bytes, message.bytes])
        }
        api.log = { plugin, level, message in
            guard plugin == RunnerState.pluginHandle, RunnerState.shared.pluginIsLive else { return }
            RunnerState.shared.post(.log, event: 0, [Array(String(level.rawValue).utf8), message.bytes])
        }
        api.json_get_string = { socket, json, path, out in
            guard let scope = RunnerState.shared.scope(for: socket), let out else { return SIO_ERR_STATE }
            guard let document = try? JSONValue(parsing: json.raw) else { return SIO_ERR_INVALID }
            guard let found = JSONPath.lookup(path.map { String(cString: $0) } ?? "", in: document)?.stringValue else {
                return SIO_ERR_NOT_FOUND
            }
            out.pointee = scope.arena.buf(found)
            return SIO_OK
        }
        api.json_quote = { socket, text, out in
            guard let scope = RunnerState.shared.scope(for: socket), let out else { return SIO_ERR_STATE }
            guard let string = text.string else { return SIO_ERR_INVALID }
            out.pointee = scope.arena.buf(JSONValue.string(string).jsonText)
            return SIO_OK
        }
        api.emit_to = { socket, channel, event, arguments, attachments, count, flags in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, isArray(arguments), flags & ~SIO_EMIT_INCLUDE_SELF == 0,
                  channel.len == 0 || validChannel(channel) else { return SIO_ERR_INVALID }
            RunnerState.shared.post(.emitTo, event: scope.eventID,
                                    [channel.bytes, event.bytes, arguments.bytes, packed(attachments, count), Array(String(flags).utf8)])
            return SIO_OK
        }
        api.oob_emit = { plugin, namespace, channel, event, arguments, attachments, count in
            guard let name = event.string, !name.isEmpty, isArray(arguments), channel.len == 0 || validChannel(channel) else {
                return SIO_ERR_INVALID
            }
            return outOfBand(plugin, .oobEmit, [namespace.bytes, channel.bytes, event.bytes, arguments.bytes, packed(attachments, count)])
        }
        api.oob_emit_to_socket = { plugin, namespace, socketID, event, arguments, attachments, count in
            guard let name = event.string, !name.isEmpty, socketID.string != nil, isArray(arguments) else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobEmitToSocket,
                             [namespace.bytes, socketID.bytes, event.bytes, arguments.bytes, packed(attachments, count)])
        }
        api.emit_with_ack = { socket, event, arguments, attachments, count, timeoutMs, callback, userData in
            let state = RunnerState.shared
            guard let scope = state.scope(for: socket) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, isArray(arguments), let callback else { return SIO_ERR_INVALID }
            let id = state.nextCallback
            state.nextCallback += 1
            state.callbacks[id] = (callback, userData)
            state.post(.emitWithAck, event: scope.eventID, [Array(String(id).utf8), event.bytes, arguments.bytes,
                                                            packed(attachments, count), Array(String(timeoutMs).utf8)])
            return SIO_OK
        }
        api.defer = { socket, out in
            guard let scope = RunnerState.shared.scope(for: socket), let out, scope.deferrable, scope.handlerTicket == 0 else {
                return SIO_ERR_STATE
            }
            scope.handlerTicket = RunnerState.shared.takeTicket(for: scope.eventID)
            out.pointee = scope.handlerTicket
            return SIO_OK
        }
        api.complete = { plugin, ticket, decision, reason, arguments in
            guard plugin == RunnerState.pluginHandle else { return SIO_ERR_STATE }
            guard decision == SIO_OK || decision == SIO_REFUSE || decision == SIO_FAIL else { return SIO_ERR_INVALID }
            guard arguments.len == 0 || isArray(arguments) else { return SIO_ERR_INVALID }
            return RunnerState.shared.complete(ticket, decision: decision,
                                               reason: reason.len > 0 ? reason.string ?? "(invalid UTF-8 reason)" : nil,
                                               ack: arguments.bytes)
        }
        api.presence_set = { socket, value in
            guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
            guard value.len <= 256, value.string != nil else { return SIO_ERR_INVALID }
            return sio_status(truncatingIfNeeded: RunnerState.shared.ask(.presenceSet, event: scope.eventID, [value.bytes]).status)
        }
        api.presence_list = { socket, channel, out, count in
            guard let scope = RunnerState.shared.scope(for: socket), let out else { return SIO_ERR_STATE }
            guard channel.len == 0 || validChannel(channel) else { return SIO_ERR_INVALID }
            let answer = RunnerState.shared.ask(.presenceList, event: scope.eventID, [channel.bytes])
            guard answer.status == Int64(SIO_OK) else { return sio_status(truncatingIfNeeded: answer.status) }
            out.pointee = scope.arena.buf(answer.value)
            if let count {
                guard case .array(let members)? = try? JSONValue(parsing: answer.value) else { return SIO_ERR_STATE }
                count.pointee = members.count
            }
            return SIO_OK
        }
        api.oob_presence_count = { plugin, namespace, channel, count in
            guard let count else { return SIO_ERR_INVALID }
            guard channel.len == 0 || validChannel(channel) else { return SIO_ERR_INVALID }
            guard plugin == RunnerState.pluginHandle, RunnerState.shared.pluginIsLive else { return SIO_ERR_STATE }
            let answer = RunnerState.shared.ask(.oobPresenceCount, event: 0, [namespace.bytes, channel.bytes])
            guard answer.status == Int64(SIO_OK), let value = Int(String(decoding: answer.value, as: UTF8.self)) else {
                return sio_status(truncatingIfNeeded: answer.status)
            }
            count.pointee = value
            return SIO_OK
        }
        api.oob_socket_join = { plugin, namespace, socketID, channel in
            guard socketID.string != nil, validChannel(channel) else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobSocketJoin, [namespace.bytes, socketID.bytes, channel.bytes])
        }
        api.oob_socket_leave = { plugin, namespace, socketID, channel in
            guard socketID.string != nil, validChannel(channel) else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobSocketLeave, [namespace.bytes, socketID.bytes, channel.bytes])
        }
        api.oob_socket_disconnect = { plugin, namespace, socketID in
            guard socketID.string != nil else { return SIO_ERR_INVALID }
            return outOfBand(plugin, .oobSocketDisconnect, [namespace.bytes, socketID.bytes])
        }
        let pointer = UnsafeMutablePointer<sio_host_api>.allocate(capacity: 1)
        pointer.initialize(to: api)
        return UnsafePointer(pointer)
    }()
}

private func forward(_ call: RunnerCall, _ socket: OpaquePointer?, json: sio_buf, _ extra: [UInt8]? = nil) -> sio_status {
    guard let scope = RunnerState.shared.scope(for: socket) else { return SIO_ERR_STATE }
    guard isJSON(json) else { return SIO_ERR_INVALID }
    RunnerState.shared.post(call, event: scope.eventID, extra.map { [json.bytes, $0] } ?? [json.bytes])
    return SIO_OK
}

private func outOfBand(_ plugin: OpaquePointer?, _ call: RunnerCall, _ fields: [[UInt8]]) -> sio_status {
    guard plugin == RunnerState.pluginHandle, RunnerState.shared.pluginIsLive else { return SIO_ERR_STATE }
    return sio_status(truncatingIfNeeded: RunnerState.shared.ask(call, event: 0, fields).status)
}

private func isJSON(_ buf: sio_buf) -> Bool {
    (try? JSONValue(parsing: buf.raw)) != nil
}

private func isArray(_ buf: sio_buf) -> Bool {
    if case .array? = try? JSONValue(parsing: buf.raw) { return true }
    return false
}

private func validChannel(_ buf: sio_buf) -> Bool {
    guard let name = buf.string else { return false }
    return !name.isEmpty && name.utf8.count <= 256
}

private func packed(_ attachments: UnsafePointer<sio_buf>?, _ count: Int) -> [UInt8] {
    guard let attachments, count > 0 else { return RunnerMessage.pack([]) }
    return RunnerMessage.pack((0..<count).map { attachments[$0].bytes })
}

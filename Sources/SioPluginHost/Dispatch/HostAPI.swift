import CSioPlugin
import Logging
import NIOCore
import SocketIOCodec
import SocketIOServer

/// The ABI version this host implements.
public enum SioABI {
    public static let major = UInt32(SIO_ABI_MAJOR)
    public static let minor = UInt32(SIO_ABI_MINOR)
}

/// The one `sio_host_api` table handed to every plugin: plain C functions that find their way
/// back to Swift objects through the opaque handles.
enum HostAPI {
    /// Built once, never written after: plugins on any thread only read it.
    nonisolated(unsafe) static let table: UnsafePointer<sio_host_api> = {
        var api = sio_host_api()
        api.struct_size = MemoryLayout<sio_host_api>.size
        api.abi_major = SioABI.major
        api.abi_minor = SioABI.minor
        api.register_handler = { plugin, kind, pattern, handler, userData in
            guard let plugin = LoadedPlugin.from(plugin), let handler else { return SIO_ERR_INVALID }
            return plugin.register(kind: kind, pattern: pattern.map { String(cString: $0) }, function: handler, userData: userData)
        }
        api.set_reason = { socket, reason in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            scope.reason = reason.string ?? "(invalid UTF-8 reason)"
            return SIO_OK
        }
        api.send = { socket, message in
            withMessage(socket, message) { scope, value in
                scope.socket.emit("message", [value])
                return SIO_OK
            }
        }
        api.broadcast = { socket, message in
            withMessage(socket, message) { scope, value in
                scope.host.sendMessage(value, namespace: scope.socket.namespace, excluding: scope.socket.id)
                return SIO_OK
            }
        }
        api.broadcast_channel = { socket, message, channel in
            withMessage(socket, message) { scope, value in
                guard let channels = scope.channels(channel) else { return SIO_ERR_INVALID }
                scope.host.sendMessage(value, namespace: scope.socket.namespace, channels: channels, excluding: scope.socket.id)
                return SIO_OK
            }
        }
        api.send_and_broadcast = { socket, message in
            withMessage(socket, message) { scope, value in
                scope.host.sendMessage(value, namespace: scope.socket.namespace)
                return SIO_OK
            }
        }
        api.send_and_broadcast_channel = { socket, message, channel in
            withMessage(socket, message) { scope, value in
                guard let channels = scope.channels(channel) else { return SIO_ERR_INVALID }
                scope.host.sendMessage(value, namespace: scope.socket.namespace, channels: channels, excluding: scope.socket.id)
                scope.socket.emit("message", [value])
                return SIO_OK
            }
        }
        api.emit = { socket, event, arguments, attachments, count in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, case .array(let values)? = scope.json(arguments) else {
                return SIO_ERR_INVALID
            }
            scope.socket.emit(name, values, attachments: byteBuffers(attachments, count))
            return SIO_OK
        }
        api.ack = { socket, id, arguments, attachments, count in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            guard id >= 0, case .array(let values)? = scope.json(arguments) else { return SIO_ERR_INVALID }
            scope.socket.ack(Int(id), values, attachments: byteBuffers(attachments, count))
            return SIO_OK
        }
        api.subscribe = { socket, channel in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            guard let name = channelName(channel) else { return SIO_ERR_INVALID }
            scope.socket.join(name)
            return SIO_OK
        }
        api.unsubscribe = { socket, channel in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            guard let name = channelName(channel) else { return SIO_ERR_INVALID }
            guard scope.socket.channels.contains(name) else { return SIO_ERR_NOT_FOUND }
            scope.socket.leave(name)
            return SIO_OK
        }
        api.disconnect = { socket in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            scope.socket.disconnect()
            return SIO_OK
        }
        api.context_set = { socket, key, value in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            scope.socket.hostState.context[key.bytes] = value.bytes
            return SIO_OK
        }
        api.context_get = { socket, key, out in
            guard let scope = EventScope.from(socket), let out else { return SIO_ERR_STATE }
            guard let value = scope.socket.existingHostState?.context[key.bytes] else { return SIO_ERR_NOT_FOUND }
            out.pointee = scope.arena.buf(value)
            return SIO_OK
        }
        api.context_delete = { socket, key in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            return scope.socket.existingHostState?.context.removeValue(forKey: key.bytes) == nil ? SIO_ERR_NOT_FOUND : SIO_OK
        }
        api.oob_broadcast = { plugin, namespace, message in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let value = try? JSONValue(parsing: message.raw) else { return SIO_ERR_INVALID }
            return plugin.host.outOfBandBroadcast(value, namespace: namespaceName(namespace), channel: nil).status
        }
        api.oob_broadcast_channel = { plugin, namespace, message, channel in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let value = try? JSONValue(parsing: message.raw), let name = channelName(channel) else { return SIO_ERR_INVALID }
            return plugin.host.outOfBandBroadcast(value, namespace: namespaceName(namespace), channel: name).status
        }
        api.oob_send = { plugin, namespace, socketID, message in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let value = try? JSONValue(parsing: message.raw), let id = socketID.string else { return SIO_ERR_INVALID }
            return plugin.host.outOfBandSend(value, namespace: namespaceName(namespace), socketID: id).status
        }
        api.log = { plugin, level, message in
            guard let plugin = LoadedPlugin.from(plugin) else { return }
            let text = message.string ?? "(invalid UTF-8)"
            let logLevel: Logger.Level
            switch level {
            case SIO_LOG_DEBUG: logLevel = .debug
            case SIO_LOG_WARNING: logLevel = .warning
            case SIO_LOG_ERROR: logLevel = .error
            default: logLevel = .info
            }
            plugin.host.logger.log(level: logLevel, "\(text)", metadata: ["plugin": "\(plugin.summaryForWatchdog)"])
        }
        api.json_get_string = { socket, json, path, out in
            guard let scope = EventScope.from(socket), let out else { return SIO_ERR_STATE }
            guard let document = scope.json(json) else { return SIO_ERR_INVALID }
            guard let found = JSONPath.lookup(path.map { String(cString: $0) } ?? "", in: document)?.stringValue else {
                return SIO_ERR_NOT_FOUND
            }
            out.pointee = scope.arena.buf(found)
            return SIO_OK
        }
        api.json_quote = { socket, text, out in
            guard let scope = EventScope.from(socket), let out else { return SIO_ERR_STATE }
            guard let string = text.string else { return SIO_ERR_INVALID }
            out.pointee = scope.arena.buf(JSONValue.string(string).jsonText)
            return SIO_OK
        }
        api.emit_to = { socket, channel, event, arguments, attachments, count, flags in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, case .array(let values)? = scope.json(arguments),
                  flags & ~SIO_EMIT_INCLUDE_SELF == 0 else { return SIO_ERR_INVALID }
            var channels: [String]?
            if channel.len > 0 {
                guard let valid = channelName(channel) else { return SIO_ERR_INVALID }
                channels = [valid]
            }
            scope.host.attached.load()?.emit(
                namespace: scope.socket.namespace, event: name, values, attachments: byteBuffers(attachments, count),
                channels: channels, excluding: flags & SIO_EMIT_INCLUDE_SELF != 0 ? nil : scope.socket.id)
            return SIO_OK
        }
        api.oob_emit = { plugin, namespace, channel, event, arguments, attachments, count in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, case .array(let values)? = try? JSONValue(parsing: arguments.raw) else {
                return SIO_ERR_INVALID
            }
            var target: String?
            if channel.len > 0 {
                guard let valid = channelName(channel) else { return SIO_ERR_INVALID }
                target = valid
            }
            return plugin.host.outOfBandEmit(name, values, attachments: byteBuffers(attachments, count),
                                             namespace: namespaceName(namespace), channel: target).status
        }
        api.oob_emit_to_socket = { plugin, namespace, socketID, event, arguments, attachments, count in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, let id = socketID.string,
                  case .array(let values)? = try? JSONValue(parsing: arguments.raw) else { return SIO_ERR_INVALID }
            return plugin.host.outOfBandEmit(name, values, attachments: byteBuffers(attachments, count),
                                             namespace: namespaceName(namespace), socketID: id).status
        }
        api.emit_with_ack = { socket, event, arguments, attachments, count, timeoutMs, callback, userData in
            guard let scope = EventScope.from(socket), let plugin = scope.plugin else { return SIO_ERR_STATE }
            guard let name = event.string, !name.isEmpty, case .array(let values)? = scope.json(arguments), let callback else {
                return SIO_ERR_INVALID
            }
            let host = scope.host
            let target = scope.socket
            let call = PluginHost.AckCallback(function: callback, userData: userData)
            target.emit(name, values, attachments: byteBuffers(attachments, count),
                        timeout: timeoutMs > 0 ? .milliseconds(Int64(timeoutMs)) : nil) { outcome in
                host.deliverAck(outcome, socket: target, plugin: plugin, callback: call)
            }
            return SIO_OK
        }
        api.defer = { socket, out in
            guard let scope = EventScope.from(socket), let out, let ticket = scope.host.deferEvent(in: scope) else {
                return SIO_ERR_STATE
            }
            out.pointee = ticket
            return SIO_OK
        }
        api.complete = { plugin, ticket, decision, reason, arguments in
            guard let plugin = PluginHandles.owner(plugin) else { return SIO_ERR_STATE }
            guard decision == SIO_OK || decision == SIO_REFUSE || decision == SIO_FAIL else { return SIO_ERR_INVALID }
            var ackArguments: [JSONValue]?
            if arguments.len > 0 {
                guard case .array(let values)? = try? JSONValue(parsing: arguments.raw) else { return SIO_ERR_INVALID }
                ackArguments = values
            }
            return plugin.host.complete(ticket, by: plugin.name, decision: decision,
                                        reason: reason.len > 0 ? reason.string ?? "(invalid UTF-8 reason)" : nil,
                                        ackArguments: ackArguments)
        }
        api.presence_set = { socket, value in
            guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
            return scope.host.setPresence(value.bytes, socket: scope.socket)
        }
        api.presence_list = { socket, channel, out, count in
            guard let scope = EventScope.from(socket), let out else { return SIO_ERR_STATE }
            var name: String?
            if channel.len > 0 {
                guard let valid = channelName(channel) else { return SIO_ERR_INVALID }
                name = valid
            }
            let (json, members) = scope.host.presenceJSON(namespace: scope.socket.namespace, channel: name)
            out.pointee = scope.arena.buf(json)
            count?.pointee = members
            return SIO_OK
        }
        api.oob_presence_count = { plugin, namespace, channel, count in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let count else { return SIO_ERR_INVALID }
            var name: String?
            if channel.len > 0 {
                guard let valid = channelName(channel) else { return SIO_ERR_INVALID }
                name = valid
            }
            count.pointee = plugin.host.presenceCount(namespace: namespaceName(namespace), channel: name)
            return SIO_OK
        }
        api.oob_socket_join = { plugin, namespace, socketID, channel in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let id = socketID.string, let name = channelName(channel) else { return SIO_ERR_INVALID }
            return plugin.host.operateOnSocket(.join(name), namespace: namespaceName(namespace), socketID: id)
        }
        api.oob_socket_leave = { plugin, namespace, socketID, channel in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let id = socketID.string, let name = channelName(channel) else { return SIO_ERR_INVALID }
            return plugin.host.operateOnSocket(.leave(name), namespace: namespaceName(namespace), socketID: id)
        }
        api.oob_socket_disconnect = { plugin, namespace, socketID in
            guard let plugin = LoadedPlugin.from(plugin) else { return SIO_ERR_STATE }
            guard let id = socketID.string else { return SIO_ERR_INVALID }
            return plugin.host.operateOnSocket(.disconnect, namespace: namespaceName(namespace), socketID: id)
        }
        let pointer = UnsafeMutablePointer<sio_host_api>.allocate(capacity: 1)
        pointer.initialize(to: api)
        return UnsafePointer(pointer)
    }()
}

private func withMessage(_ socket: OpaquePointer?, _ message: sio_buf, _ body: (EventScope, JSONValue) -> sio_status) -> sio_status {
    guard let scope = EventScope.from(socket) else { return SIO_ERR_STATE }
    guard let value = scope.json(message) else { return SIO_ERR_INVALID }
    return body(scope, value)
}

private func byteBuffers(_ attachments: UnsafePointer<sio_buf>?, _ count: Int) -> [ByteBuffer] {
    guard let attachments, count > 0 else { return [] }
    return (0..<count).map { ByteBuffer(bytes: attachments[$0].bytes) }
}

private func channelName(_ buf: sio_buf) -> String? {
    guard let name = buf.string, !name.isEmpty, name.utf8.count <= 256 else { return nil }
    return name
}

private func namespaceName(_ buf: sio_buf) -> String {
    guard let name = buf.string, !name.isEmpty else { return "/" }
    return name
}

extension EventScope {
    /// The channel argument of the broadcast calls: one channel, or every channel the socket
    /// is in when it is empty.
    func channels(_ channel: sio_buf) -> [String]? {
        if channel.len == 0 { return Array(socket.channels) }
        return channelName(channel).map { [$0] }
    }
}

import CSioPlugin
import SocketIOCodec
import SocketIOServer

/// `emit_with_ack`'s callback (ABI 1.2): a plugin's code called back later, so it runs as a
/// handler does, with the serving set pinned, and only while the version that asked still
/// serves: a replaced or removed version's code may be unmapped.
extension PluginHost {
    /// The C callback and the plugin's pointer, carried to the socket's loop. `@unchecked
    /// Sendable`: a C function pointer, and `user_data`, the plugin's own, which the ABI's
    /// threading rules let the host hand back on any thread.
    struct AckCallback: @unchecked Sendable {
        let function: sio_ack_fn
        let userData: UnsafeMutableRawPointer?
    }

    func deliverAck(_ outcome: AckOutcome, socket: Socket, plugin: LoadedPlugin, callback: AckCallback) {
        withServingSet { generation, _ in
            guard generation.plugins.contains(where: { $0 === plugin }) else { return }
            var reply = sio_ack_reply()
            reply.struct_size = MemoryLayout<sio_ack_reply>.size
            guard case .disconnected = outcome else {
                callInScope(socket: socket, plugin: plugin, callback: callback, reply: &reply, outcome: outcome)
                return
            }
            reply.status = SIO_ERR_NO_SOCKET
            let arena = CArena()
            reply.socket_id = arena.buf(socket.id)
            reply.nsp = arena.buf(socket.namespace)
            withExtendedLifetime(arena) {
                withUnsafePointer(to: &reply) { callback.function($0, callback.userData) }
            }
        }
    }

    /// Answered or timed out: the socket is there, and host functions take its handle.
    private func callInScope(socket: Socket, plugin: LoadedPlugin, callback: AckCallback, reply: inout sio_ack_reply,
                             outcome: AckOutcome) {
        let scope = EventScope(socket: socket, host: self)
        scope.plugin = plugin
        let thread = DispatchThread.current
        guard let handle = thread.open(scope) else {
            logger.error("events nested too deeply; acknowledgement callback not run", metadata: ["socket": "\(socket.id)"])
            return
        }
        defer { thread.close(scope) }
        reply.socket = handle
        reply.socket_id = scope.arena.buf(socket.id)
        reply.nsp = scope.arena.buf(socket.namespace)
        switch outcome {
        case .answered(let arguments, let attachments):
            reply.status = SIO_OK
            let json = JSONValue.array(arguments)
            reply.args_json = scope.arena.buf(json.jsonText)
            scope.remember(json, at: reply.args_json)
            let buffers = attachments.map { scope.arena.buf(Array($0.readableBytesView)) }
            reply.attachments = scope.arena.array(buffers)
            reply.attachment_count = buffers.count
        case .timedOut:
            reply.status = SIO_ERR_TIMEOUT
        case .disconnected:
            return
        }
        withUnsafePointer(to: &reply) { callback.function($0, callback.userData) }
    }
}

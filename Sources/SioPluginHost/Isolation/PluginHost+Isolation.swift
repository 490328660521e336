import Atomics
import CSioPlugin
import Foundation
import Logging
import NIOCore
import SocketIOCodec
import SocketIOServer

/// Isolated mode: events go to runner processes, and what their handlers ask for comes back
/// here, where every connection, subscription and context lives.
extension PluginHost {
    /// The runner answered an event (or crashed with it in flight).
    func isolatedEventDone(_ flight: PluginRunner.InFlight, runner: PluginRunner, status: sio_status, reason: String,
                           ack: [UInt8], crashed: Bool = false) {
        if flight.ticket != 0 {
            var arguments: [JSONValue]?
            if !ack.isEmpty, case .array(let values)? = try? JSONValue(parsing: ack) { arguments = values }
            // A connection whose plugin crashed under it is kept: the crash is the plugin's, and
            // the client is told nothing; on_error tells the other plugins.
            let decision = crashed && flight.kind == SIO_EVENT_CONNECT ? SIO_OK : status
            _ = complete(flight.ticket, by: runner.name, decision: decision, reason: reason.isEmpty ? nil : reason,
                         ackArguments: arguments)
            if crashed, flight.kind == SIO_EVENT_CONNECT {
                let socket = flight.socket
                socket.eventLoop.execute { self.raiseError(socket, "\(runner.name): \(reason)", plugin: runner.summary) }
            }
            return
        }
        let socket = flight.socket
        if let id = flight.ackID, !ack.isEmpty, case .array(let values)? = try? JSONValue(parsing: ack) {
            socket.ack(id, values)
        }
        guard status != SIO_OK else { return }
        // The words the server uses in process when a completion gives none.
        let reason = !reason.isEmpty ? reason : status == SIO_REFUSE ? "a message cannot be refused" : "handler failed"
        socket.eventLoop.execute { [self] in
            if flight.kind == SIO_EVENT_ERROR || flight.kind == SIO_EVENT_FINISH {
                logger.warning("\(LoadedPlugin.eventNames[Int(flight.kind.rawValue)]) handler failed",
                               metadata: ["socket": "\(socket.id)", "plugin": "\(runner.summary)", "error": "\(reason)"])
            } else {
                raiseError(socket, "\(runner.name): \(reason)", plugin: runner.summary)
            }
        }
    }

    /// A client's message a runner answered (or never will): reading from the client resumes
    /// once its backlog is down to `PluginRunner.backlogResume`. On the socket's loop.
    func settle(_ flight: PluginRunner.InFlight) {
        guard flight.counted, let state = flight.state else { return }
        state.runnerBacklog -= 1
        if state.inputHeld, state.runnerBacklog <= PluginRunner.backlogResume {
            state.inputHeld = false
            flight.socket.releaseInput()
        }
    }

    /// A host call a handler made during an event, on its socket's loop.
    func perform(_ call: RunnerCall, _ message: RunnerMessage, flight: PluginRunner.InFlight,
                 runner: PluginRunner) -> (sio_status, [UInt8]) {
        let socket = flight.socket
        func field(_ index: Int) -> ArraySlice<UInt8> { message.field(index) }
        func json(_ index: Int) -> JSONValue? { field(index).withUnsafeBytes { try? JSONValue(parsing: $0) } }
        func text(_ index: Int) -> String { message.text(index) }
        func channels(_ index: Int) -> [String] { field(index).isEmpty ? Array(socket.channels) : [text(index)] }
        func attachments(_ index: Int) -> [ByteBuffer] { (RunnerMessage.unpack(Array(field(index))) ?? []).map { ByteBuffer(bytes: $0) } }
        let state = flight.state
        switch call {
        case .send:
            guard let value = json(0) else { return (SIO_ERR_INVALID, []) }
            socket.emit("message", [value])
        case .broadcast:
            guard let value = json(0) else { return (SIO_ERR_INVALID, []) }
            sendMessage(value, namespace: socket.namespace, excluding: socket.id)
        case .broadcastChannel:
            guard let value = json(0) else { return (SIO_ERR_INVALID, []) }
            sendMessage(value, namespace: socket.namespace, channels: channels(1), excluding: socket.id)
        case .sendAndBroadcast:
            guard let value = json(0) else { return (SIO_ERR_INVALID, []) }
            sendMessage(value, namespace: socket.namespace)
        case .sendAndBroadcastChannel:
            guard let value = json(0) else { return (SIO_ERR_INVALID, []) }
            sendMessage(value, namespace: socket.namespace, channels: channels(1), excluding: socket.id)
            socket.emit("message", [value])
        case .emit:
            guard case .array(let values)? = json(1) else { return (SIO_ERR_INVALID, []) }
            socket.emit(text(0), values, attachments: attachments(2))
        case .ack:
            guard let id = Int(text(0)), case .array(let values)? = json(1) else { return (SIO_ERR_INVALID, []) }
            socket.ack(id, values, attachments: attachments(2))
        case .subscribe:
            socket.join(text(0))
        case .unsubscribe:
            guard socket.channels.contains(text(0)) else { return (SIO_ERR_NOT_FOUND, []) }
            socket.leave(text(0))
        case .disconnect:
            socket.disconnect()
        case .contextSet:
            (state ?? socket.hostState).context[Array(field(0))] = Array(field(1))
        case .contextGet:
            guard let value = (state ?? socket.existingHostState)?.context[Array(field(0))] else { return (SIO_ERR_NOT_FOUND, []) }
            return (SIO_OK, value)
        case .contextDelete:
            guard (state ?? socket.existingHostState)?.context.removeValue(forKey: Array(field(0))) != nil else { return (SIO_ERR_NOT_FOUND, []) }
        case .emitTo:
            guard case .array(let values)? = json(2) else { return (SIO_ERR_INVALID, []) }
            let flags = UInt32(text(4)) ?? 0
            attached.load()?.emit(namespace: socket.namespace, event: text(1), values, attachments: attachments(3),
                                  channels: field(0).isEmpty ? nil : [text(0)],
                                  excluding: flags & SIO_EMIT_INCLUDE_SELF != 0 ? nil : socket.id)
        case .emitWithAck:
            guard let callback = UInt64(text(0)), case .array(let values)? = json(2) else { return (SIO_ERR_INVALID, []) }
            let timeout = Int64(text(4)) ?? 0
            socket.emit(text(1), values, attachments: attachments(3), timeout: timeout > 0 ? .milliseconds(timeout) : nil) { outcome in
                runner.sendAckReply(callback: callback, outcome: outcome, socket: socket)
            }
        case .presenceSet:
            return (setPresence(Array(field(0)), socket: socket), [])
        case .presenceList:
            return (SIO_OK, Array(presenceJSON(namespace: socket.namespace, channel: field(0).isEmpty ? nil : text(0)).json.utf8))
        default:
            return performOutOfBand(call, message, runner: runner)
        }
        return (SIO_OK, [])
    }

    /// A host call from any thread of the plugin (no socket).
    func performOutOfBand(_ call: RunnerCall, _ message: RunnerMessage, runner: PluginRunner) -> (sio_status, [UInt8]) {
        func field(_ index: Int) -> [UInt8] { Array(message.field(index)) }
        func text(_ index: Int) -> String { message.text(index) }
        func namespace() -> String { field(0).isEmpty ? "/" : text(0) }
        func attachments(_ index: Int) -> [ByteBuffer] { (RunnerMessage.unpack(field(index)) ?? []).map { ByteBuffer(bytes: $0) } }
        switch call {
        case .oobBroadcast:
            guard let value = try? JSONValue(parsing: field(1)) else { return (SIO_ERR_INVALID, []) }
            return (outOfBandBroadcast(value, namespace: namespace(), channel: nil).status, [])
        case .oobBroadcastChannel:
            guard let value = try? JSONValue(parsing: field(1)) else { return (SIO_ERR_INVALID, []) }
            return (outOfBandBroadcast(value, namespace: namespace(), channel: text(2)).status, [])
        case .oobSend:
            guard let value = try? JSONValue(parsing: field(2)) else { return (SIO_ERR_INVALID, []) }
            return (outOfBandSend(value, namespace: namespace(), socketID: text(1)).status, [])
        case .oobEmit:
            guard case .array(let values)? = try? JSONValue(parsing: field(3)) else { return (SIO_ERR_INVALID, []) }
            return (outOfBandEmit(text(2), values, attachments: attachments(4), namespace: namespace(),
                                  channel: field(1).isEmpty ? nil : text(1)).status, [])
        case .oobEmitToSocket:
            guard case .array(let values)? = try? JSONValue(parsing: field(3)) else { return (SIO_ERR_INVALID, []) }
            return (outOfBandEmit(text(2), values, attachments: attachments(4), namespace: namespace(), socketID: text(1)).status, [])
        case .oobPresenceCount:
            return (SIO_OK, Array(String(presenceCount(namespace: namespace(), channel: field(1).isEmpty ? nil : text(1))).utf8))
        case .oobSocketJoin:
            return (operateOnSocket(.join(text(2)), namespace: namespace(), socketID: text(1)), [])
        case .oobSocketLeave:
            return (operateOnSocket(.leave(text(2)), namespace: namespace(), socketID: text(1)), [])
        case .oobSocketDisconnect:
            return (operateOnSocket(.disconnect, namespace: namespace(), socketID: text(1)), [])
        case .log:
            let level: Logger.Level
            switch Int32(text(0)) ?? 1 {
            case Int32(SIO_LOG_DEBUG.rawValue): level = .debug
            case Int32(SIO_LOG_WARNING.rawValue): level = .warning
            case Int32(SIO_LOG_ERROR.rawValue): level = .error
            default: level = .info
            }
            logger.log(level: level, "\(String(decoding: field(1), as: UTF8.self))", metadata: ["plugin": "\(runner.summary)"])
            return (SIO_OK, [])
        default:
            return (SIO_ERR_STATE, [])
        }
    }

    /// From the first runner on, sockets' ends are told to runners too.
    func noteRunner() {
        hasRunners.store(true, ordering: .relaxed)
    }
}

extension PluginHost {
    /// Runners die with the server (`PR_SET_PDEATHSIG`): the disconnects and finishes the
    /// shutdown raised would die with them, unhandled. Waits until each runner answered what it
    /// was sent, or `timeout`.
    public func settle(timeout: Duration) async {
        guard hasRunners.load(ordering: .relaxed) else { return }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if current.withLockedValue({ $0.runners }).allSatisfy(\.isSettled) { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

import CSioPlugin
import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import SocketIOCodec
import SocketIOServer

/// The server's events, turned into handler calls.
extension PluginHost {
    // MARK: The seven events

    public func connect(_ socket: Socket, auth: JSONValue?) -> ConnectDecision {
        let outcome = dispatch(SIO_EVENT_CONNECT, socket: socket, binding: .unbound) { event, scope in
            if let auth { event.auth_json = scope.arena.buf(auth.jsonText) }
        }
        switch outcome {
        case .completed: return .accept
        case .refused(let reason): return .refuse(message: reason)
        case .later: return .later
        }
    }

    public func message(_ socket: Socket, event: IncomingEvent) -> MessageDecision {
        // `args_json`, with where each argument lies in it: handlers that pass a piece of it back
        // (a relay forwarding what it got) are answered from the parsed value, not parsed again.
        var arguments: [UInt8] = [UInt8(ascii: "[")]
        var ranges: [Range<Int>] = []
        for (index, argument) in event.arguments.enumerated() {
            if index > 0 { arguments.append(UInt8(ascii: ",")) }
            let start = arguments.count
            argument.write(into: &arguments)
            ranges.append(start..<arguments.count)
        }
        arguments.append(UInt8(ascii: "]"))
        messageLog?.write(socket: socket, type: "message",
                          message: event.name == "message" && event.arguments.count == 1 ? event.arguments[0].jsonText
                              : JSONValue.array([.string(event.name)] + event.arguments).jsonText)
        let outcome = dispatch(SIO_EVENT_MESSAGE, socket: socket, binding: .socketChannels) { sioEvent, scope in
            scope.ackID = event.ackID
            let arena = scope.arena
            let attachments = event.attachments.map { arena.buf($0.readableBytesView) }
            var message = sio_message()
            message.struct_size = MemoryLayout<sio_message>.size
            message.event = arena.buf(event.name)
            message.args_json = arena.buf(arguments)
            scope.remember(.array(event.arguments), at: message.args_json)
            if let base = message.args_json.ptr {
                for (range, argument) in zip(ranges, event.arguments) {
                    scope.remember(argument, at: sio_buf(ptr: base + range.lowerBound, len: range.count))
                }
            }
            message.attachments = arena.array(attachments)
            message.attachment_count = attachments.count
            message.ack_id = Int64(event.ackID ?? -1)
            sioEvent.message = arena.value(message)
        }
        if case .later = outcome { return .later }
        return .handled
    }

    public func subscribe(_ socket: Socket, channel: String) -> SubscribeDecision {
        messageLog?.write(socket: socket, type: "subscribe", message: channel)
        let outcome = dispatch(SIO_EVENT_SUBSCRIBE, socket: socket, binding: .channel(channel)) { event, scope in
            event.channel = scope.arena.buf(channel)
        }
        switch outcome {
        case .completed: return .accept
        case .refused(let reason): return .refuse(reason: reason)
        case .later: return .later
        }
    }

    public func unsubscribe(_ socket: Socket, channel: String) {
        messageLog?.write(socket: socket, type: "unsubscribe", message: channel)
        dispatch(SIO_EVENT_UNSUBSCRIBE, socket: socket, binding: .channel(channel)) { event, scope in
            event.channel = scope.arena.buf(channel)
        }
    }

    public func error(_ socket: Socket, error: SocketError) {
        raiseError(socket, error.description)
    }

    public func disconnect(_ socket: Socket, reason: DisconnectReason) {
        dispatch(SIO_EVENT_DISCONNECT, socket: socket, binding: .socketChannels) { event, scope in
            event.reason = scope.arena.buf(reason.rawValue)
        }
    }

    public func finish(_ socket: Socket) {
        if let pending = socket.existingHostState?.pending { abandon(pending) }
        if hasRunners.load(ordering: .relaxed) {
            for runner in current.withLockedValue({ $0.runners }) { runner.socketFinished(socket) }
        }
        dispatch(SIO_EVENT_FINISH, socket: socket, binding: .socketChannels) { _, _ in }
        socket.userData = nil
    }

    // MARK: Dispatch

    enum Binding {
        /// Every handler without a pattern; patterned ones only if they match `channel`.
        case channel(String)
        /// Patterned handlers when any channel the socket is in matches.
        case socketChannels
        /// on_connect: patterns are refused at load, so every handler runs.
        case unbound
    }

    enum Outcome {
        case completed
        case refused(String)
        /// A handler deferred it (ABI 1.3): `PluginHost+Pending` ends it.
        case later
    }

    /// Runs `body` with the serving plugin set pinned: a reload waits until it returns, and
    /// nested calls (an event raised from a handler) see the same set.
    func withServingSet<R>(_ body: (PluginSet, _ outermost: Bool) -> R) -> R {
        let thread = DispatchThread.current
        let generation: PluginSet
        let outermost = thread.pinned == nil
        if outermost {
            generation = current.withLockedValue { set in
                set.inFlight.wrappingIncrement(ordering: .relaxed)
                return set
            }
            thread.pinned = generation
        } else {
            generation = thread.pinned!
        }
        defer {
            if outermost {
                thread.pinned = nil
                generation.inFlight.wrappingDecrement(ordering: .releasing)
            }
        }
        return body(generation, outermost)
    }

    @discardableResult
    private func dispatch(_ kind: sio_event_kind, socket: Socket, binding: Binding,
                          fill: (inout sio_event, EventScope) -> Void) -> Outcome {
        withServingSet { generation, outermost in
            dispatch(kind, socket: socket, binding: binding, plugins: generation.plugins, runners: generation.runners,
                     outermost: outermost, fill: fill)
        }
    }

    private func dispatch(_ kind: sio_event_kind, socket: Socket, binding: Binding, plugins: [LoadedPlugin],
                          runners: [PluginRunner], outermost: Bool, fill: (inout sio_event, EventScope) -> Void) -> Outcome {
        let thread = DispatchThread.current
        guard !plugins.isEmpty || !runners.isEmpty else { return .completed }
        let scope = EventScope(socket: socket, host: self)
        guard let handle = thread.open(scope) else {
            logger.error("events nested too deeply; handlers not run", metadata: ["socket": "\(socket.id)"])
            return .completed
        }
        var isOpen = true
        defer { if isOpen { thread.close(scope) } }
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.kind = kind
        event.socket = handle
        event.request = RequestView.make(socket.request, in: scope.arena)
        event.socket_id = scope.arena.buf(socket.id)
        event.nsp = scope.arena.buf(socket.namespace)
        scope.kind = kind
        scope.deferrable = kind == SIO_EVENT_CONNECT || kind == SIO_EVENT_SUBSCRIBE || kind == SIO_EVENT_MESSAGE
        fill(&event, scope)

        var failures: [(plugin: String, message: String)] = []
        var socketChannels: Set<String>?
        func matches(_ pattern: ChannelPattern) -> Bool {
            switch binding {
            case .channel(let channel):
                return pattern.matches(channel)
            case .socketChannels:
                if socketChannels == nil {
                    socketChannels = kind == SIO_EVENT_FINISH ? socket.channelsAtDisconnect : socket.channels
                }
                return pattern.matchesAny(socketChannels!)
            case .unbound:
                return true
            }
        }
        for plugin in plugins {
            for handler in plugin.handlers(for: kind) {
                if let pattern = handler.pattern, !matches(pattern) { continue }
                scope.reason = nil
                scope.plugin = plugin
                scope.handlerTicket = 0
                let started = ContinuousClock.now
                if outermost { thread.began(plugin: plugin.summaryForWatchdog, kind: kind, socketID: socket.id, at: started) }
                let status = withUnsafePointer(to: &event) { handler.function($0, handler.userData) }
                if outermost { thread.ended() }
                handler.duration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                if scope.handlerTicket != 0, status != SIO_PENDING { withdraw(scope.handlerTicket, of: scope.pending) }
                switch HandlerVerdict.of(status, kind: kind, reason: scope.reason, deferred: scope.handlerTicket != 0) {
                case .next:
                    continue
                case .refuse(let why, let isFailure):
                    if isFailure { handler.errors.increment() }
                    if let pending = scope.pending { abandon(pending) }
                    return .refused(why)
                case .fail(let why):
                    handler.errors.increment()
                    failures.append((plugin.summaryForWatchdog, "\(plugin.name): \(why)"))
                }
            }
        }
        for runner in runners {
            let indexes = runner.handlerIndexes(for: kind, matching: matches)
            guard !indexes.isEmpty || runner.isSwitching else { continue }
            // Isolated: a connection or subscription is decided when the runner answers, as a
            // deferred one is. Messages are not held: the runner takes a socket's events in
            // order, so they stream to it, and its answer only raises on_error or acks.
            let ticket = scope.deferrable && kind != SIO_EVENT_MESSAGE
                ? issueTicket(in: scope, pluginName: runner.name, summary: runner.summary) ?? 0 : 0
            let channels: () -> Set<String>? = {
                switch binding {
                case .channel(let channel): return [channel]
                case .socketChannels: return kind == SIO_EVENT_FINISH ? socket.channelsAtDisconnect : socket.channels
                case .unbound: return nil
                }
            }
            if !runner.send(event, handlers: indexes, socket: socket, kind: kind, ticket: ticket, ackID: scope.ackID,
                            channels: channels), ticket != 0 {
                withdraw(ticket, of: scope.pending)
            }
        }
        thread.close(scope)
        isOpen = false
        let deferred = scope.pending.map { seal($0) } ?? false
        for failure in failures {
            if kind == SIO_EVENT_ERROR {
                // An on_error handler that fails is logged, never raised again.
                logger.warning("on_error handler failed",
                               metadata: ["socket": "\(socket.id)", "plugin": "\(failure.plugin)", "error": "\(failure.message)"])
            } else {
                raiseError(socket, failure.message, plugin: failure.plugin)
            }
        }
        return deferred ? .later : .completed
    }

    /// `plugin`: "name version" of the handler that failed, for the log; nil when the server
    /// raised the error.
    func raiseError(_ socket: Socket, _ message: String, plugin: String? = nil) {
        var metadata: Logger.Metadata = ["socket": "\(socket.id)", "error": "\(message)"]
        if let plugin { metadata["plugin"] = "\(plugin)" }
        logger.warning("socket error", metadata: metadata)
        dispatch(SIO_EVENT_ERROR, socket: socket, binding: .socketChannels) { event, scope in
            event.error = scope.arena.buf(message)
        }
    }
}

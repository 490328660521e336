import Logging
import NIOCore
import SocketIOCodec

/// One Engine.IO session: its transport, outbox and heartbeat.
///
/// Confined to `eventLoop`: every method must be called there. Transports on other loops hop
/// here first, so all of a session's traffic is handled in the order it arrived, without locks.
/// What the transport does is decided by `EngineSessionState`; this class carries it out.
///
/// `@unchecked Sendable`: the registry and the transports of other loops hold it, and reach
/// its state only by executing on `eventLoop` (asserted in each method).
final class EngineSession: @unchecked Sendable {
    typealias Responder = (PollOutcome) -> Void

    let id: String
    let eventLoop: EventLoop
    let request: HandshakeRequest
    let context: ServerContext
    /// This loop's counters, when metrics are on.
    let counters: LoopCounters?

    /// Unchecked exclusivity: touched on `eventLoop` only, by the pure state machine's methods,
    /// which never call out while they hold it. The dynamic check cost 2-3 % of the server's CPU
    /// per broadcast delivery (benchmarks/ab.py, "fixed").
    @exclusivity(unchecked) private var state: EngineSessionState<WebSocketOutput, Responder>
    private var heartbeat = Heartbeat()
    private(set) var socketIO: Client!

    /// The scheduled callbacks of the heartbeat and the CONNECT deadline.
    private struct Heartbeat {
        /// The next ping or, once it is sent, the deadline of its pong: never both.
        var next: NIOScheduledCallback?
        /// Boxed: a scheduled callback takes 41 bytes, and after the CONNECT, which is where
        /// every idle session sits, there is none.
        var connectDeadline: ScheduledBox?

        mutating func cancelAll() {
            next?.cancel()
            connectDeadline?.callback?.cancel()
            self = Heartbeat()
        }
    }

    private final class ScheduledBox {
        let callback: NIOScheduledCallback?

        init(_ callback: NIOScheduledCallback?) {
            self.callback = callback
        }
    }

    init(id: String = Identifier.make(), eventLoop: EventLoop, request: HandshakeRequest, context: ServerContext, webSocket: WebSocketOutput?) {
        self.id = id
        self.eventLoop = eventLoop
        self.request = request
        self.context = context
        self.counters = context.metrics?.counters(for: eventLoop)
        self.state = EngineSessionState(webSocket: webSocket)
        self.socketIO = Client(session: self)
    }

    /// `websocket` or `polling`, for operators. On `eventLoop`.
    var transportName: String {
        state.webSocket == nil ? "polling" : "websocket"
    }

    /// Sends the open packet and starts the timers; the session is registered by the caller.
    func open() {
        eventLoop.assertInEventLoop()
        let handshake = context.handshakeJSON(id, state.webSocket == nil)
        context.metrics?.handshake(webSocket: state.webSocket != nil)
        send([EngineIOPacket(.open, payload: ByteBuffer(string: handshake))])
        schedulePing()
        heartbeat.connectDeadline = ScheduledBox(schedule(.connectDeadline, in: context.configuration.connectTimeout))
    }

    /// Closed, or draining after a close: no transport to send on.
    var isClosed: Bool { state.isClosed }

    func namespaceConnected() {
        heartbeat.connectDeadline?.callback?.cancel()
        heartbeat.connectDeadline = nil
    }

    // MARK: Outbound

    func send(_ packets: [EngineIOPacket]) {
        send(OutboundMessage(packets))
    }

    func send(_ message: OutboundMessage) {
        eventLoop.assertInEventLoop()
        // A broadcast comes through here once per recipient, nearly always to a WebSocket: that
        // case writes straight away, without an action to build and destroy (3 % of the server's
        // time per delivery, measured).
        if let webSocket = state.webSocket {
            webSocket.write(message, callerLoop: eventLoop)
            return
        }
        switch state.send(message.packets, limit: context.configuration.maxOutboundBytes) {
        case .none:
            break
        case .write(let webSocket):
            webSocket.write(message, callerLoop: eventLoop)
        case .answer(let responder, let body):
            responder(.packets(body))
        case .overflow:
            close(reason: .slowConsumer)
        }
    }

    /// The WebSocket `channel` has more than `maxOutboundBytes` waiting to be written.
    func slowConsumer(_ channel: Channel) {
        eventLoop.assertInEventLoop()
        guard channel === state.webSocket?.channel else { return }
        close(reason: .slowConsumer)
    }

    // MARK: Long-polling

    func poll(_ responder: @escaping Responder) {
        eventLoop.assertInEventLoop()
        switch state.poll(responder) {
        case .parked:
            break
        case .answer(let responder, let body):
            responder(.packets(body))
        case .answerAndForget(let responder, let body):
            context.unregister(self)
            responder(.packets(body))
        case .refuse(let responder, let error):
            responder(.refused(error))
        case .overlap(let responder):
            responder(.refused(.badRequest))
            context.logger.debug("overlapping GET closes the session", metadata: ["sid": "\(id)"])
            close(reason: .transportError)
        }
    }

    func receivePost(_ body: ByteBuffer) -> EngineHTTPError? {
        eventLoop.assertInEventLoop()
        if let refusal = state.postRefusal { return refusal }
        let packets: [EngineIOPacket]
        do {
            packets = try PollingPayload.decode(body)
        } catch {
            socketIO.invalidPacket(error)
            return .badRequest
        }
        for packet in packets where !state.isClosed {
            receive(packet, fromProbe: false)
        }
        return nil
    }

    // MARK: WebSocket

    /// A WebSocket carrying this session's sid has connected and waits for `2probe`.
    func attachProbe(_ channel: WebSocketOutput) -> Bool {
        eventLoop.assertInEventLoop()
        return state.beginProbe(channel)
    }

    func webSocketClosed(_ channel: Channel) {
        eventLoop.assertInEventLoop()
        if channel === state.webSocket?.channel {
            close(reason: .transportClose)
        } else if channel === state.probe?.channel {
            state.probeClosed()
        }
    }

    /// `Socket.holdInput`: while above 0, the WebSocket reads nothing more from the client.
    private(set) var inputHolds = 0

    func holdInput() {
        eventLoop.assertInEventLoop()
        inputHolds += 1
        if inputHolds == 1, let channel = state.webSocket?.channel {
            channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
    }

    func releaseInput() {
        eventLoop.assertInEventLoop()
        guard inputHolds > 0 else { return }
        inputHolds -= 1
        if inputHolds == 0, let channel = state.webSocket?.channel {
            channel.pipeline.fireUserInboundEventTriggered(InputReleased())
        }
    }

    /// Told to the WebSocket's handler when the last hold ends.
    struct InputReleased {}

    func receive(_ packet: EngineIOPacket, from channel: Channel) {
        eventLoop.assertInEventLoop()
        receive(packet, fromProbe: channel === state.probe?.channel)
    }

    private func receive(_ packet: EngineIOPacket, fromProbe: Bool) {
        guard !state.isClosed else { return }
        if fromProbe {
            receiveOnProbe(packet)
            return
        }
        switch packet.kind {
        case .message:
            socketIO.receive(packet)
        case .pong:
            schedulePing()
        case .ping:
            send([EngineIOPacket(.pong, payload: packet.payload)])
        case .close:
            state.takeParkedPoll()?(.packets(PollingOutbox.payload(EngineIOPacket(.noop))))
            close(reason: .transportClose)
        case .noop:
            break
        case .open, .upgrade:
            socketIO.invalidPacket(CodecError.unknownPacketType)
        }
    }

    private func receiveOnProbe(_ packet: EngineIOPacket) {
        guard let probe = state.probe else { return }
        switch packet.kind {
        case .ping where packet.payload.readableBytesView.elementsEqual("probe".utf8):
            probe.write(OutboundMessage([EngineIOPacket(.pong, payload: packet.payload)]), callerLoop: eventLoop)
            // The client waits for its current poll to return before it sends the upgrade.
            state.takeParkedPoll()?(.packets(PollingOutbox.payload(EngineIOPacket(.noop))))
        case .upgrade:
            switch state.completeUpgrade() {
            case .refuse:
                probe.channel.close(promise: nil)
            case .upgraded(let endPoll, let queued):
                endPoll?(.packets(PollingOutbox.payload(EngineIOPacket(.noop))))
                if !queued.isEmpty { probe.write(OutboundMessage(queued), callerLoop: eventLoop) }
            }
        default:
            probe.channel.close(promise: nil)
        }
    }

    // MARK: Heartbeat and close

    /// Replaces whatever the heartbeat waits for (a pong, or the next ping) by the next ping.
    private func schedulePing() {
        heartbeat.next?.cancel()
        heartbeat.next = schedule(.ping, in: context.configuration.pingInterval)
    }

    private func schedule(_ kind: SessionTimer.Kind, in milliseconds: Int64) -> NIOScheduledCallback? {
        try? eventLoop.scheduleCallback(in: .milliseconds(milliseconds), handler: SessionTimer(session: self, kind: kind))
    }

    fileprivate func timerFired(_ kind: SessionTimer.Kind) {
        switch kind {
        case .ping:
            heartbeat.next = schedule(.pongDeadline, in: context.configuration.pingTimeout)
            send([EngineIOPacket(.ping)])
        case .pongDeadline:
            heartbeat.next = nil
            close(reason: .pingTimeout)
        case .connectDeadline:
            heartbeat.connectDeadline = nil
            if !socketIO.hasConnectedNamespace {
                context.logger.debug("no CONNECT in time", metadata: ["sid": "\(id)"])
                close(reason: .transportClose)
            }
        case .drainDeadline:
            if state.drainTimedOut() { context.unregister(self) }
        }
    }

    /// Ends the session: the application hears about it first, then the transport goes.
    /// The future completes once the transport is closed (at once for long-polling, whose
    /// last answer is written by then).
    @discardableResult
    func close(reason: DisconnectReason) -> EventLoopFuture<Void> {
        eventLoop.assertInEventLoop()
        let serverInitiated = reason == .serverShutdown || reason == .forcedClose || reason == .serverNamespaceDisconnect
        let action = state.close(serverInitiated: serverInitiated, slowConsumer: reason == .slowConsumer, shutdown: reason == .serverShutdown)
        guard !action.alreadyClosed else { return eventLoop.makeSucceededVoidFuture() }
        if reason == .slowConsumer {
            context.logger.info("slow consumer dropped", metadata: ["sid": "\(id)", "socket": "\(socketIO.socketIDs)", "queued_bytes": "\(action.droppedBytes)"])
        }
        heartbeat.cancelAll()
        socketIO.transportClosed(reason: reason)
        action.probe?.channel.close(promise: nil)
        if action.draining {
            _ = schedule(.drainDeadline, in: context.configuration.pingTimeout)
            return eventLoop.makeSucceededVoidFuture()
        }
        context.unregister(self)
        if let (responder, body) = action.poll { responder(.packets(body)) }
        context.logger.debug("session closed", metadata: ["sid": "\(id)", "reason": "\(reason.rawValue)"])
        guard let webSocket = action.webSocket else { return eventLoop.makeSucceededVoidFuture() }
        // A server-initiated close tells the client so; after a client's close or a dead
        // transport there is nobody to tell.
        if serverInitiated {
            webSocket.write(OutboundMessage([EngineIOPacket(.close)]), callerLoop: eventLoop)
        }
        webSocket.flushAndClose()
        return webSocket.channel.closeFuture
    }
}

/// A session's timer as a NIO scheduled callback: unlike `scheduleTask` it needs no promise,
/// future or closure, which cost about 400 bytes for every idle connection's next ping.
private struct SessionTimer: NIOScheduledCallbackHandler, Sendable {
    enum Kind { case ping, pongDeadline, connectDeadline, drainDeadline }

    let session: EngineSession
    let kind: Kind

    func handleScheduledCallback(eventLoop: some EventLoop) {
        session.timerFired(kind)
    }
}

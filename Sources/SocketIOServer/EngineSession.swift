import Logging
import NIOCore
import SocketIOCodec

/// How a parked long-polling GET is answered.
enum PollOutcome {
    case packets(ByteBuffer)
    case refused(EngineHTTPError)
}

/// One Engine.IO session: its transport, outbox and heartbeat.
///
/// Confined to `eventLoop`: every method must be called there. Transports on other loops hop
/// here first, so all of a session's traffic is handled in the order it arrived, without locks.
final class EngineSession: @unchecked Sendable {
    let id: String
    let eventLoop: EventLoop
    let request: HandshakeRequest
    let context: ServerContext

    private var state = EngineTransportState()
    private var webSocket: WebSocketOutput?
    private var probe: WebSocketOutput?
    private var pendingPoll: ((PollOutcome) -> Void)?
    private var outbox: [EngineIOPacket] = []
    /// What `outbox` holds, in payload bytes: past `maxOutboundBytes` the client is a slow
    /// consumer (a long-poll client that stopped polling).
    private var outboxBytes = 0
    private var pingTask: NIOScheduledCallback?
    private var pongDeadline: NIOScheduledCallback?
    private var connectDeadline: NIOScheduledCallback?
    /// A server-closed polling session stays reachable for one more GET, so that the client
    /// reads what was queued (a DISCONNECT, the close packet) instead of a "Session ID unknown".
    private var drainingAfterClose = false
    private(set) var socketIO: Client!

    init(id: String = Identifier.make(), eventLoop: EventLoop, request: HandshakeRequest, context: ServerContext, webSocket: WebSocketOutput?) {
        self.id = id
        self.eventLoop = eventLoop
        self.request = request
        self.context = context
        self.webSocket = webSocket
        if webSocket != nil { state = EngineTransportState(webSocket: ()) }
        self.socketIO = Client(session: self)
    }

    /// Sends the open packet and starts the timers; the session is registered by the caller.
    func open() {
        eventLoop.assertInEventLoop()
        let handshake = context.handshakeJSON(id, webSocket == nil)
        send([EngineIOPacket(.open, payload: ByteBuffer(string: handshake))])
        schedulePing()
        connectDeadline = schedule(.connectDeadline, in: context.configuration.connectTimeout)
    }

    func namespaceConnected() {
        connectDeadline?.cancel()
        connectDeadline = nil
    }

    // MARK: Outbound

    func send(_ packets: [EngineIOPacket]) {
        send(OutboundMessage(packets))
    }

    func send(_ message: OutboundMessage) {
        eventLoop.assertInEventLoop()
        guard !state.isClosed else { return }
        if state.isWebSocket, let webSocket {
            webSocket.write(message, callerLoop: eventLoop)
        } else {
            outbox.append(contentsOf: message.packets)
            for packet in message.packets { outboxBytes += packet.payload.readableBytes + 1 }
            if outboxBytes > context.configuration.maxOutboundBytes {
                close(reason: .slowConsumer)
                return
            }
            flushPoll()
        }
    }

    /// The WebSocket `channel` has more than `maxOutboundBytes` waiting to be written.
    func slowConsumer(_ channel: Channel) {
        eventLoop.assertInEventLoop()
        guard channel === webSocket?.channel else { return }
        close(reason: .slowConsumer)
    }

    private func takeFromOutbox(_ count: Int) -> ArraySlice<EngineIOPacket> {
        let taken = outbox[..<count]
        for packet in taken { outboxBytes -= packet.payload.readableBytes + 1 }
        return taken
    }

    /// python-engineio refuses a polling payload of more than 16 packets ("Too many packets in
    /// payload"), so a long outbox goes out over several polls.
    static let maximumPacketsPerPoll = 16

    private func flushPoll() {
        guard let responder = pendingPoll, !outbox.isEmpty else { return }
        pendingPoll = nil
        let count = min(outbox.count, Self.maximumPacketsPerPoll)
        var body = ByteBuffer()
        PollingPayload.encode(takeFromOutbox(count), into: &body)
        outbox.removeFirst(count)
        responder(.packets(body))
    }

    // MARK: Long-polling

    func poll(_ responder: @escaping (PollOutcome) -> Void) {
        eventLoop.assertInEventLoop()
        if drainingAfterClose {
            // What was queued goes first; the close packet comes alone in a later poll: the
            // JavaScript client handles Socket.IO packets on the next tick but a close at once,
            // so a DISCONNECT sharing a payload with the close would read as "transport close".
            var body = ByteBuffer()
            if outbox.isEmpty {
                PollingPayload.encode([EngineIOPacket(.close)], into: &body)
                drainingAfterClose = false
                context.unregister(self)
            } else {
                let count = min(outbox.count, Self.maximumPacketsPerPoll)
                PollingPayload.encode(takeFromOutbox(count), into: &body)
                outbox.removeFirst(count)
            }
            responder(.packets(body))
            return
        }
        switch state.pollRequested(hasPendingPoll: pendingPoll != nil) {
        case .park:
            pendingPoll = responder
            flushPoll()
        case .answerNow:
            if outbox.isEmpty { outbox.append(EngineIOPacket(.noop)) }
            pendingPoll = responder
            flushPoll()
        case .refuse(let error):
            responder(.refused(error))
        case .overlap:
            responder(.refused(.badRequest))
            context.logger.debug("overlapping GET closes the session", metadata: ["sid": "\(id)"])
            close(reason: .transportError)
        }
    }

    func receivePost(_ body: ByteBuffer) -> EngineHTTPError? {
        eventLoop.assertInEventLoop()
        guard state.acceptsPolling else { return state.isClosed ? .unknownSession : .badRequest }
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
        guard state.beginProbe() else { return false }
        probe = channel
        return true
    }

    func webSocketClosed(_ channel: Channel) {
        eventLoop.assertInEventLoop()
        if channel === webSocket?.channel {
            close(reason: .transportClose)
        } else if channel === probe?.channel {
            probe = nil
            state.probeFailed()
        }
    }

    func receive(_ packet: EngineIOPacket, from channel: Channel) {
        eventLoop.assertInEventLoop()
        receive(packet, fromProbe: channel === probe?.channel && channel !== webSocket?.channel)
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
            pongDeadline?.cancel()
            pongDeadline = nil
            schedulePing()
        case .ping:
            send([EngineIOPacket(.pong, payload: packet.payload)])
        case .close:
            // A long-poll client closing by POST: its pending GET ends with a noop, as the
            // reference server answers, and the session is gone for later requests.
            if let responder = pendingPoll {
                pendingPoll = nil
                var body = ByteBuffer()
                PollingPayload.encode([EngineIOPacket(.noop)], into: &body)
                responder(.packets(body))
            }
            close(reason: .transportClose)
        case .noop:
            break
        case .open, .upgrade:
            socketIO.invalidPacket(CodecError.unknownPacketType)
        }
    }

    private func receiveOnProbe(_ packet: EngineIOPacket) {
        guard let probe else { return }
        switch packet.kind {
        case .ping where packet.payload.readableBytesView.elementsEqual("probe".utf8):
            probe.write(OutboundMessage([EngineIOPacket(.pong, payload: packet.payload)]), callerLoop: eventLoop)
            // The client waits for its current poll to return before it sends the upgrade.
            if let responder = pendingPoll {
                pendingPoll = nil
                var body = ByteBuffer()
                PollingPayload.encode([EngineIOPacket(.noop)], into: &body)
                responder(.packets(body))
            }
        case .upgrade:
            guard state.completeUpgrade() else {
                probe.channel.close(promise: nil)
                return
            }
            webSocket = probe
            self.probe = nil
            if let responder = pendingPoll {
                pendingPoll = nil
                responder(.packets(ByteBuffer(string: "6")))
            }
            let queued = outbox
            outbox.removeAll()
            outboxBytes = 0
            if !queued.isEmpty { probe.write(OutboundMessage(queued), callerLoop: eventLoop) }
        default:
            probe.channel.close(promise: nil)
        }
    }

    // MARK: Heartbeat and close

    private func schedulePing() {
        pingTask?.cancel()
        pingTask = schedule(.ping, in: context.configuration.pingInterval)
    }

    private func schedule(_ kind: SessionTimer.Kind, in milliseconds: Int64) -> NIOScheduledCallback? {
        try? eventLoop.scheduleCallback(in: .milliseconds(milliseconds), handler: SessionTimer(session: self, kind: kind))
    }

    fileprivate func timerFired(_ kind: SessionTimer.Kind) {
        switch kind {
        case .ping:
            pingTask = nil
            send([EngineIOPacket(.ping)])
            pongDeadline = schedule(.pongDeadline, in: context.configuration.pingTimeout)
        case .pongDeadline:
            pongDeadline = nil
            close(reason: .pingTimeout)
        case .connectDeadline:
            connectDeadline = nil
            if !socketIO.hasConnectedNamespace {
                context.logger.debug("no CONNECT in time", metadata: ["sid": "\(id)"])
                close(reason: .transportClose)
            }
        }
    }

    /// Ends the session: the application hears about it first, then the transport goes.
    func close(reason: DisconnectReason) {
        eventLoop.assertInEventLoop()
        guard state.close() else { return }
        if reason == .slowConsumer {
            // What it did not read is dropped, not sent on a last poll.
            context.logger.info("slow consumer dropped", metadata: ["sid": "\(id)", "queued_bytes": "\(outboxBytes)"])
            outbox.removeAll()
            outboxBytes = 0
        }
        pingTask?.cancel()
        pongDeadline?.cancel()
        connectDeadline?.cancel()
        socketIO.transportClosed(reason: reason)

        let closePacket = EngineIOPacket(.close)
        let serverInitiated = reason == .serverShutdown || reason == .forcedClose || reason == .serverNamespaceDisconnect
        if serverInitiated, webSocket == nil, pendingPoll == nil, reason != .serverShutdown {
            drainingAfterClose = true
            probe?.channel.close(promise: nil)
            eventLoop.scheduleTask(in: .milliseconds(context.configuration.pingTimeout)) { [self] in
                if drainingAfterClose {
                    drainingAfterClose = false
                    outbox.removeAll()
                    outboxBytes = 0
                    context.unregister(self)
                }
            }
            return
        }
        context.unregister(self)
        if let webSocket {
            // A server-initiated close tells the client so; after a client's close or a dead
            // transport there is nobody to tell.
            if serverInitiated {
                webSocket.write(OutboundMessage([closePacket]), callerLoop: eventLoop)
            }
            webSocket.flushAndClose()
        }
        probe?.channel.close(promise: nil)
        if let responder = pendingPoll {
            pendingPoll = nil
            var body = ByteBuffer()
            PollingPayload.encode(outbox.prefix(Self.maximumPacketsPerPoll - 1) + [closePacket], into: &body)
            responder(.packets(body))
        }
        outbox.removeAll()
        outboxBytes = 0
        context.logger.debug("session closed", metadata: ["sid": "\(id)", "reason": "\(reason.rawValue)"])
    }
}

/// A session's timer as a NIO scheduled callback: unlike `scheduleTask` it needs no promise,
/// future or closure, which cost about 400 bytes for every idle connection's next ping.
private struct SessionTimer: NIOScheduledCallbackHandler, Sendable {
    enum Kind { case ping, pongDeadline, connectDeadline }

    let session: EngineSession
    let kind: Kind

    func handleScheduledCallback(eventLoop: some EventLoop) {
        session.timerFired(kind)
    }
}

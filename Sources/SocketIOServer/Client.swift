import NIOCore
import SocketIOCodec

/// The Socket.IO layer of one Engine.IO session: namespaces, binary reassembly, channels.
///
/// Confined to the session's event loop, like the session that owns it.
final class Client {
    static let subscribeEvent = "__subscribe__"
    static let unsubscribeEvent = "__unsubscribe__"

    private unowned let session: EngineSession
    private var assembler = BinaryPacketAssembler()
    /// One per connected namespace: a handful at most, so an array, which costs an idle
    /// connection less than a dictionary.
    private var sockets: [Socket] = []

    init(session: EngineSession) {
        self.session = session
    }

    var hasConnectedNamespace: Bool { !sockets.isEmpty }

    private func socket(_ namespace: String) -> Socket? {
        sockets.first { $0.namespace == namespace }
    }

    private var context: ServerContext { session.context }
    private var application: Application { session.context.application }

    func receive(_ packet: EngineIOPacket) {
        let action: BinaryPacketAssembler.Action
        do {
            action = packet.isBinary
                ? try assembler.receiveBinary(packet.payload)
                : try assembler.receiveText(packet.payload)
        } catch {
            invalidPacket(error)
            return
        }
        if case .packet(let packet, let attachments) = action {
            handle(packet, attachments: attachments)
        }
    }

    /// The client broke the protocol: every socket hears of it, then the session closes.
    func invalidPacket(_ error: CodecError) {
        context.logger.info("invalid packet, closing", metadata: ["sid": "\(session.id)", "error": "\(error)"])
        for socket in sockets {
            application.error(socket, error: .invalidPacket(error.description))
        }
        session.close(reason: .parseError)
    }

    private func handle(_ packet: SocketIOPacket, attachments: [ByteBuffer]) {
        let counters = session.counters
        switch packet.kind {
        case .connect:
            counters?.connects += 1
            connect(namespace: packet.namespace, auth: packet.data)
        case .event, .binaryEvent:
            guard let socket = socket(packet.namespace), let name = packet.eventName else { return }
            if socket.rateLimiter != nil, !admit(socket) { return }
            let event = IncomingEvent(name: name, arguments: packet.arguments, attachments: attachments, ackID: packet.ackID)
            switch name {
            case Self.subscribeEvent:
                counters?.subscribes += 1
                socket.clientSubscribe(event)
            case Self.unsubscribeEvent:
                counters?.unsubscribes += 1
                socket.clientUnsubscribe(event)
            default:
                counters?.messages += 1
                application.message(socket, event: event)
            }
        case .ack, .binaryAck:
            guard let socket = socket(packet.namespace), let id = packet.ackID else { return }
            counters?.acks += 1
            socket.receiveAck(id: id, arguments: packet.arguments, attachments: attachments)
        case .disconnect:
            guard let socket = socket(packet.namespace) else { return }
            counters?.disconnects += 1
            finish(socket, reason: .clientNamespaceDisconnect)
        case .connectError:
            invalidPacket(CodecError.invalidPayload)
        }
    }

    private func connect(namespace: String, auth: JSONValue?) {
        guard let registry = context.namespaces[namespace] else {
            send(SocketIOPacket(kind: .connectError, namespace: namespace, data: ["message": "Invalid namespace"]))
            return
        }
        guard socket(namespace) == nil else { return }
        let socket = Socket(namespace: registry, session: session)
        if let rate = context.configuration.maxEventsPerSecond {
            socket.rateLimiter = RateLimiterBox(EventRateLimiter(rate: rate, burst: context.configuration.eventBurst ?? rate,
                                                                 now: Int64(NIODeadline.now().uptimeNanoseconds)))
        }
        switch application.connect(socket, auth: auth) {
        case .accept:
            sockets.append(socket)
            registry.add(socket)
            session.namespaceConnected()
            send(SocketIOPacket(kind: .connect, namespace: namespace, data: ["sid": .string(socket.id)]))
            socket.connected()
        case .refuse(let message, let data):
            var body: [(String, JSONValue)] = [("message", .string(message))]
            if let data { body.append(("data", data)) }
            send(SocketIOPacket(kind: .connectError, namespace: namespace, data: .object(body)))
            socket.markFinished()
            application.finish(socket)
        }
    }

    /// The socket's event rate limit: false when the event is dropped (or the socket is gone).
    private func admit(_ socket: Socket) -> Bool {
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        switch socket.rateLimiter!.limiter.event(now: now) {
        case .accept:
            return true
        case .dropAndReport:
            application.error(socket, error: .rateLimited)
            return false
        case .drop:
            return false
        case .disconnect:
            context.logger.info("socket disconnected: rate limited", metadata: ["socket": "\(socket.id)"])
            send(SocketIOPacket(kind: .disconnect, namespace: socket.namespace))
            finish(socket, reason: .rateLimited)
            if !hasConnectedNamespace { session.close(reason: .rateLimited) }
            return false
        }
    }

    /// Runs the end of a socket's life in the order of docs/events.md: disconnect, unsubscribe from each
    /// channel still joined, finish.
    func finish(_ socket: Socket, reason: DisconnectReason) {
        guard let index = sockets.firstIndex(where: { $0 === socket }) else { return }
        sockets.remove(at: index)
        socket.namespaceRegistry.remove(socket)
        context.disconnects.record(reason)
        context.metrics?.disconnected(reason)
        application.disconnect(socket, reason: reason)
        socket.leaveAllChannels()
        socket.markFinished()
        application.finish(socket)
    }

    func transportClosed(reason: DisconnectReason) {
        for socket in sockets.sorted(by: { $0.namespace < $1.namespace }) {
            finish(socket, reason: reason)
        }
    }

    func send(_ packet: SocketIOPacket, attachments: [ByteBuffer] = []) {
        session.send(Self.enginePackets(packet, attachments: attachments))
    }

    static func enginePackets(_ packet: SocketIOPacket, attachments: [ByteBuffer]) -> [EngineIOPacket] {
        var packets = [EngineIOPacket(.message, payload: packet.encoded())]
        for attachment in attachments { packets.append(.binary(attachment)) }
        return packets
    }
}

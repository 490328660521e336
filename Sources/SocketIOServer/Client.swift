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
    /// Sockets whose CONNECT the application decides later.
    private var connecting: [Socket] = []
    /// Sockets taking over a recoverable one, while its loop hands it over.
    private var recovering: [Socket] = []

    init(session: EngineSession) {
        self.session = session
    }

    var hasConnectedNamespace: Bool { !sockets.isEmpty }

    /// The ids of the session's sockets, for log lines about the whole session.
    var socketIDs: String { sockets.map(\.id).joined(separator: ",") }

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
        context.logger.info("invalid packet, closing", metadata: ["sid": "\(session.id)", "socket": "\(socketIDs)", "error": "\(error)"])
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
            guard let socket = socket(packet.namespace), packet.eventName != nil else { return }
            if socket.rateLimiter != nil, !admit(socket) { return }
            if let hold = socket.hold {
                self.hold(packet, attachments: attachments, in: hold, for: socket)
                return
            }
            handleEvent(packet, attachments: attachments, for: socket)
        case .ack, .binaryAck:
            guard let socket = socket(packet.namespace), packet.ackID != nil else { return }
            if let hold = socket.hold {
                self.hold(packet, attachments: attachments, in: hold, for: socket)
                return
            }
            handleEvent(packet, attachments: attachments, for: socket)
        case .disconnect:
            guard let socket = socket(packet.namespace) else { return }
            counters?.disconnects += 1
            finish(socket, reason: .clientNamespaceDisconnect)
        case .connectError:
            invalidPacket(CodecError.invalidPayload)
        }
    }

    /// An event or ack of a connected socket, in the order the client sent it.
    private func handleEvent(_ packet: SocketIOPacket, attachments: [ByteBuffer], for socket: Socket) {
        let counters = session.counters
        guard let name = packet.eventName, packet.kind == .event || packet.kind == .binaryEvent else {
            counters?.acks += 1
            socket.receiveAck(id: packet.ackID!, arguments: packet.arguments, attachments: attachments)
            return
        }
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
            if application.message(socket, event: event) == .later { socket.wait(for: .message) }
        }
    }

    /// Behind an event the application finishes later.
    private func hold(_ packet: SocketIOPacket, attachments: [ByteBuffer], in hold: EventHold, for socket: Socket) {
        let (held, reportOverflow) = hold.hold(packet, attachments: attachments)
        if !held, reportOverflow {
            context.logger.info("packets dropped behind an event finished later",
                                metadata: ["socket": "\(socket.id)", "limit": "\(EventHold.limit)"])
            application.error(socket, error: .heldOverflow(limit: EventHold.limit))
        }
    }

    /// The application finished the event `socket` waited for: what the client sent meanwhile
    /// is handled now, in order, until another event waits.
    func releaseHeld(_ socket: Socket) {
        while let hold = socket.hold, let (packet, attachments) = hold.release() {
            handleEvent(packet, attachments: attachments, for: socket)
        }
        if let hold = socket.hold, hold.waiting == nil, hold.isEmpty { socket.hold = nil }
    }

    private func connect(namespace: String, auth: JSONValue?) {
        guard let registry = context.namespaces[namespace] else {
            send(SocketIOPacket(kind: .connectError, namespace: namespace, data: ["message": "Invalid namespace"]))
            return
        }
        guard socket(namespace) == nil, !connecting.contains(where: { $0.namespace == namespace }),
              !recovering.contains(where: { $0.namespace == namespace }) else { return }
        if context.recovery != nil, let pid = auth?["pid"]?.stringValue {
            if let old = context.recoverable.withLockedValue({ $0.removeValue(forKey: pid) }) {
                recover(old, namespace: registry, offset: auth?["offset"]?.stringValue.flatMap(RecoverySettings.parse), auth: auth)
                return
            }
            if let away = context.cluster?.awaySocket(pid: pid), away.namespace == namespace, registry.socket(away.id) == nil {
                claim(away, pid: pid, namespace: registry, auth: auth)
                return
            }
        }
        let socket = Socket(namespace: registry, session: session)
        limit(socket)
        let decision = application.connect(socket, auth: auth)
        if decision == .later {
            connecting.append(socket)
            socket.wait(for: .connect)
        } else {
            decide(socket, decision)
        }
    }

    /// A CONNECT with the private id of a socket whose transport was lost: its loop hands it
    /// over to a socket of this session (same id), then this loop acknowledges and sends what
    /// was missed. When it cannot be recovered the CONNECT goes on as a new one.
    private func recover(_ old: Socket, namespace registry: NamespaceRegistry, offset: UInt64?, auth: JSONValue?) {
        guard old.namespaceRegistry === registry, let pid = old.pid else {
            old.eventLoop.execute { old.expire() }
            connect(namespace: registry.name, auth: Self.withoutRecovery(auth))
            return
        }
        let socket = Socket(namespace: registry, session: session, recovering: (old.id, pid))
        recovering.append(socket)
        let session = self.session
        old.eventLoop.execute {
            let handover = old.handOver(to: socket, offset: offset)
            session.eventLoop.execute { session.socketIO.completeRecovery(socket, handover, auth: auth) }
        }
    }

    func completeRecovery(_ socket: Socket, _ handover: Handover?, auth: JSONValue?) {
        guard let index = recovering.firstIndex(where: { $0 === socket }) else { return }
        recovering.remove(at: index)
        guard let handover else {
            connect(namespace: socket.namespace, auth: Self.withoutRecovery(auth))
            return
        }
        socket.takeOver(handover)
        sockets.append(socket)
        session.namespaceConnected()
        send(SocketIOPacket(kind: .connect, namespace: socket.namespace,
                            data: ["sid": .string(socket.id), "pid": .string(socket.pid ?? "")]))
        socket.connected()
        if session.isClosed {
            // The new transport went while the old socket was handed over: lost again.
            transportClosed(socket, reason: .transportClose)
        }
    }

    /// How long a client that comes back from another node waits for that node's answer before
    /// it gets a new socket (the node may be gone).
    static let claimTimeout: TimeAmount = .seconds(3)

    /// A CONNECT with the private id of a socket away on another node of the cluster: a socket
    /// with its id holds its channels here — what they are sent meanwhile waits in it — while
    /// that node is asked for the rest.
    private func claim(_ away: AwaySocket, pid: String, namespace registry: NamespaceRegistry, auth: JSONValue?) {
        guard let cluster = context.cluster else { return }
        let socket = Socket(namespace: registry, session: session, recovering: (away.id, pid))
        limit(socket)
        recovering.append(socket)
        registry.add(socket)
        for channel in away.channels where socket.channelSet.insert(channel).inserted {
            registry.join(socket, channel: channel)
        }
        let context = self.context
        context.claims.withLockedValue { $0[pid] = PendingClaim(socket: socket, node: away.node, auth: auth) }
        cluster.send(.recoveryClaim(namespace: registry.name, socket: away.id, pid: pid, offset: auth?["offset"]?.stringValue ?? ""),
                     to: away.node)
        session.eventLoop.scheduleTask(in: Self.claimTimeout) { [session] in
            let claim = context.claims.withLockedValue { table -> PendingClaim? in
                guard table[pid]?.socket === socket else { return nil }
                return table.removeValue(forKey: pid)
            }
            if let claim { session.socketIO.completeRemoteRecovery(socket, nil, auth: claim.auth) }
        }
    }

    /// The other node answered (nil: it could not recover the socket, or did not answer in
    /// time). From here on the socket is a new one to the application — its context stayed with
    /// the other node — that is already in its channels.
    func completeRemoteRecovery(_ socket: Socket, _ state: RecoveredSocket?, auth: JSONValue?) {
        guard let index = recovering.firstIndex(where: { $0 === socket }) else { return }
        recovering.remove(at: index)
        guard let state, let cluster = context.cluster, !session.isClosed else {
            socket.abandon()
            if !session.isClosed { connect(namespace: socket.namespace, auth: Self.withoutRecovery(auth)) }
            return
        }
        socket.adopt(state, localNode: cluster.nodeID)
        socket.isRestored = true
        let decision = application.connect(socket, auth: Self.withoutRecovery(auth))
        if decision == .later {
            connecting.append(socket)
            socket.wait(for: .connect)
        } else {
            decide(socket, decision)
        }
    }

    private func limit(_ socket: Socket) {
        if let rate = context.configuration.maxEventsPerSecond {
            socket.rateLimiter = RateLimiterBox(EventRateLimiter(rate: rate, burst: context.configuration.eventBurst ?? rate,
                                                                 now: Int64(NIODeadline.now().uptimeNanoseconds)))
        }
    }

    private static func withoutRecovery(_ auth: JSONValue?) -> JSONValue? {
        guard case .object(let pairs)? = auth else { return auth }
        return .object(pairs.filter { $0.0 != "pid" && $0.0 != "offset" })
    }

    /// The application decided a CONNECT it took `.later` for.
    func completeConnect(_ socket: Socket, _ decision: ConnectDecision) {
        guard let index = connecting.firstIndex(where: { $0 === socket }) else { return }
        connecting.remove(at: index)
        decide(socket, decision)
    }

    private func decide(_ socket: Socket, _ decision: ConnectDecision) {
        switch decision {
        case .accept:
            sockets.append(socket)
            let restored = socket.isRestored
            socket.isRestored = false
            if !restored { socket.namespaceRegistry.add(socket) }
            session.namespaceConnected()
            var data: [(String, JSONValue)] = [("sid", .string(socket.id))]
            if let pid = socket.pid { data.append(("pid", .string(pid))) }
            send(SocketIOPacket(kind: .connect, namespace: socket.namespace, data: .object(data)))
            socket.connected()
            // Recovered from another node: the application hears of the channels it is in, as
            // of a new socket's subscriptions. They are the socket's: its answer is not asked.
            if restored {
                for channel in socket.channelSet.sorted() { _ = application.subscribe(socket, channel: channel) }
            }
        case .refuse(let message, let data):
            if socket.isRestored { socket.abandon() }
            var body: [(String, JSONValue)] = [("message", .string(message))]
            if let data { body.append(("data", data)) }
            send(SocketIOPacket(kind: .connectError, namespace: socket.namespace, data: .object(body)))
            socket.markFinished()
            application.finish(socket)
        case .later:
            break
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
            transportClosed(socket, reason: reason)
        }
        // Never connected, so no `disconnect`; `finish` still comes exactly once.
        let undecided = connecting
        connecting = []
        for socket in undecided {
            if socket.isRestored { socket.abandon() }
            socket.markFinished()
            application.finish(socket)
        }
    }

    /// One socket's transport is gone: kept for recovery when it can be, else finished.
    private func transportClosed(_ socket: Socket, reason: DisconnectReason) {
        if socket.detach(reason: reason), let index = sockets.firstIndex(where: { $0 === socket }) {
            sockets.remove(at: index)
            return
        }
        finish(socket, reason: reason)
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

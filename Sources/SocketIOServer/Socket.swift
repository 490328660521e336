import Foundation
import NIOCore
import SocketIOCodec

/// One client's connection to one namespace: what handlers act on.
///
/// Its methods may be called from any thread; they hop to the socket's event loop, so calls
/// made from one thread reach the client in the order they were made.
///
/// `@unchecked Sendable`: handlers on any thread hold it, but its mutable state is touched on
/// `eventLoop` only — every method that changes it hops there first — and a broadcast on that
/// loop writes straight through without a closure per recipient, which a loop-bound box would
/// cost in a check per access.
public final class Socket: @unchecked Sendable {
    /// The Socket.IO socket id, as the client sees it in `socket.id`.
    public let id: String
    public let request: HandshakeRequest
    /// The Engine.IO session id underneath.
    public var sessionID: String { session.id }
    public var namespace: String { namespaceRegistry.name }
    public var eventLoop: EventLoop { session.eventLoop }
    /// Free for the application; the core never reads it. Touch it on `eventLoop` only.
    public var userData: AnyObject?
    /// When the client's CONNECT arrived.
    public let connectedAt = Date()

    let namespaceRegistry: NamespaceRegistry
    let session: EngineSession
    var channelSet: Set<String> = []
    var pendingAcks: [Int: PendingAck] = [:]
    private var nextAckID = 0
    /// Unchecked exclusivity, as `EngineSession.state`: read on every delivery, touched on
    /// `eventLoop` only, and only read or replaced whole.
    @exclusivity(unchecked) var lifecycle = Lifecycle.connecting(beforeConnect: [])
    /// `--max-events-per-second`, when set: boxed, so that a socket without a limit pays one
    /// pointer for it. Touched on `eventLoop` only.
    var rateLimiter: RateLimiterBox?
    /// Set while the application finishes one of this socket's events later, and until the
    /// packets held meanwhile are handled. Touched on `eventLoop` only.
    var hold: EventHold?
    /// With connection state recovery: the private id the client gives back to recover this
    /// socket, and what it was sent lately. Touched on `eventLoop` only.
    let pid: String?
    var recovery: RecoveryBox?
    /// Recovered from another node and waiting for the application's `connect`: already in
    /// the namespace and its channels.
    var isRestored = false
    /// Recovered once: keeps all it is sent, channel broadcasts too, in the order it sends it.
    /// What its client got before (copies with new offsets, originals in the channels'
    /// histories) no longer follows offset order, so its log alone says what it missed.
    var keepsEverything = false

    /// Where the socket is in its life, touched on `eventLoop` only.
    enum Lifecycle {
        /// The application's `connect` runs: what it emits waits in `beforeConnect`, to go
        /// after the CONNECT acknowledgement.
        case connecting(beforeConnect: [OutboundMessage])
        /// The acknowledgement is on its way alone; what `connect` emitted, and anything sent
        /// since, follows in a write of its own `acknowledgementGap` later (see `connected()`).
        case acknowledging(queued: [OutboundMessage])
        case connected
        /// Disconnected, or refused: nothing more is sent, joined or answered.
        case finished
        /// The transport is lost and the client may come back (connection state recovery):
        /// still in its channels, what it is sent is only kept. The application has heard
        /// nothing yet.
        case detached(DisconnectReason)
        /// Recovered: the socket of the client's new connection took over; anything still
        /// sent here goes there.
        case handedOver(Socket)
    }

    private var isConnected: Bool {
        if case .connected = lifecycle { return true }
        return false
    }

    /// Connected as the client sees it: acknowledged, whether or not the queue went out yet.
    private var isAccepted: Bool {
        switch lifecycle {
        case .connected, .acknowledging: return true
        case .connecting, .finished, .detached, .handedOver: return false
        }
    }

    private var isFinished: Bool {
        switch lifecycle {
        case .finished, .detached, .handedOver: return true
        case .connecting, .acknowledging, .connected: return false
        }
    }

    /// The channels this socket is in. Read on `eventLoop`.
    public var channels: Set<String> { channelSet }

    /// What an operator sees of the socket (`sio sockets`). On `eventLoop`.
    var snapshot: SocketSnapshot {
        SocketSnapshot(id: id, namespace: namespace, transport: session.transportName, remoteAddress: request.remoteAddress,
                       channels: channelSet.sorted(), connectedAt: connectedAt)
    }

    /// The channels it was in when it disconnected: `finish` comes after it left them all, and
    /// handlers bound to a channel still match it there.
    public private(set) var channelsAtDisconnect: Set<String> = []

    init(namespace: NamespaceRegistry, session: EngineSession, recovering: (id: String, pid: String)? = nil) {
        self.id = recovering?.id ?? Identifier.make()
        self.request = session.request
        self.namespaceRegistry = namespace
        self.session = session
        if session.context.recovery != nil {
            self.pid = recovering?.pid ?? Identifier.make()
        } else {
            self.pid = nil
        }
    }

    /// How long what `connect` emitted waits behind the CONNECT acknowledgement. A client that
    /// handles all the messages of one read together before running its continuations — Node's
    /// `ws` does, and the official protocol test suite awaits the acknowledgement, then the next
    /// message — would otherwise see the event before it knows it is connected, and lose it.
    static let acknowledgementGap: TimeAmount = .milliseconds(1)

    /// The CONNECT acknowledgement was just sent.
    func connected() {
        guard case .connecting(let beforeConnect) = lifecycle else { return }
        guard !beforeConnect.isEmpty else {
            lifecycle = .connected
            return
        }
        lifecycle = .acknowledging(queued: beforeConnect)
        _ = try? session.eventLoop.scheduleCallback(in: Self.acknowledgementGap, handler: ReleaseQueued(socket: self))
    }

    fileprivate func releaseQueued() {
        guard case .acknowledging(let queued) = lifecycle else { return }
        lifecycle = .connected
        for message in queued { session.send(message) }
    }

    /// Nothing more is sent; acknowledgements still awaited end as `disconnected`, in the order
    /// they were asked.
    func markFinished() {
        lifecycle = .finished
        hold = nil
        guard !pendingAcks.isEmpty else { return }
        let pending = pendingAcks.sorted { $0.key < $1.key }
        pendingAcks = [:]
        for (_, ack) in pending {
            ack.timeout?.cancel()
            ack.call(.disconnected)
        }
    }

    private func deliver(_ packet: SocketIOPacket, attachments: [ByteBuffer]) {
        var packet = packet
        var offset: UInt64 = 0
        // With recovery, events the client does not acknowledge carry an offset and are kept.
        if let recovery = session.context.recovery, packet.ackID == nil, packet.kind == .event || packet.kind == .binaryEvent,
           case .array(let values)? = packet.data {
            offset = recovery.nextOffset()
            packet.data = .array(values + [.string(RecoverySettings.text(offset))])
        }
        let message = OutboundMessage(Client.enginePackets(packet, attachments: attachments), offset: offset)
        if case .connected = lifecycle {
            keep(message)
            session.counters?.unicasts += 1
            session.send(message)
        } else {
            queue(message)
        }
    }

    /// Anything but a send to a connected client: before the acknowledgement it waits, in
    /// order; a detached socket only keeps it; a handed-over one passes it on.
    private func queue(_ message: OutboundMessage) {
        switch lifecycle {
        case .acknowledging(var queued):
            keep(message)
            lifecycle = .finished  // not copied on append
            queued.append(message)
            lifecycle = .acknowledging(queued: queued)
        case .connecting(var beforeConnect):
            keep(message)
            lifecycle = .finished  // not copied on append
            beforeConnect.append(message)
            lifecycle = .connecting(beforeConnect: beforeConnect)
        case .detached:
            keep(message)
        case .handedOver(let next):
            next.sendEncoded(message, callerLoop: nil)
        case .connected, .finished:
            break
        }
    }

    /// Keeps an event with an offset for recovery.
    @inline(__always)
    func keep(_ message: OutboundMessage) {
        guard message.offset != 0, !message.isShared || keepsEverything else { return }
        if let recovery {
            recovery.append(message)
        } else if let settings = session.context.recovery {
            // Made on the first message: an idle socket pays one pointer for recovery.
            let box = RecoveryBox(settings)
            recovery = box
            box.append(message)
        }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if session.eventLoop.inEventLoop {
            body()
        } else {
            session.eventLoop.execute(body)
        }
    }

    // MARK: Sending

    /// Emits `event` to this client; `ack` runs on the event loop when the client answers.
    public func emit(_ event: String, _ arguments: [JSONValue] = [], attachments: [ByteBuffer] = [],
                     ack: (@Sendable ([JSONValue], [ByteBuffer]) -> Void)? = nil) {
        var outcome: (@Sendable (AckOutcome) -> Void)?
        if let ack {
            outcome = { result in
                if case .answered(let arguments, let attachments) = result { ack(arguments, attachments) }
            }
        }
        emit(event, arguments, attachments: attachments, timeout: nil, outcome: outcome)
    }

    /// Emits `event` and asks the client to acknowledge it (socket.io's `emitWithAck`): `outcome`
    /// runs once on the event loop, with the answer, when `timeout` passes first, or when the
    /// socket disconnects first (between the application's `disconnect` and `finish`; at once
    /// if it is already gone). A late answer is dropped.
    public func emit(_ event: String, _ arguments: [JSONValue] = [], attachments: [ByteBuffer] = [],
                     timeout: TimeAmount?, outcome: (@Sendable (AckOutcome) -> Void)?) {
        onLoop { [self] in
            switch lifecycle {
            case .handedOver(let next):
                next.emit(event, arguments, attachments: attachments, timeout: timeout, outcome: outcome)
                return
            case .detached where outcome == nil:
                // Kept for the client's return.
                break
            case .finished, .detached:
                // Never before the caller returns: it may still be in the middle of a handler.
                if let outcome { session.eventLoop.execute { outcome(.disconnected) } }
                return
            case .connecting, .acknowledging, .connected:
                break
            }
            var ackID: Int?
            if let outcome {
                let id = nextAckID
                nextAckID += 1
                ackID = id
                var pending = PendingAck(call: outcome)
                if let timeout {
                    pending.timeout = session.eventLoop.scheduleTask(in: timeout) { [self] in
                        pendingAcks.removeValue(forKey: id)?.call(.timedOut)
                    }
                }
                pendingAcks[id] = pending
            }
            let packet = SocketIOPacket(
                kind: attachments.isEmpty ? .event : .binaryEvent, namespace: namespace, ackID: ackID,
                data: .array([.string(event)] + arguments), attachmentCount: attachments.count)
            deliver(packet, attachments: attachments)
        }
    }

    /// Answers the client's event `id` (from `IncomingEvent.ackID`).
    public func ack(_ id: Int, _ arguments: [JSONValue], attachments: [ByteBuffer] = []) {
        onLoop { [self] in
            guard !isFinished else { return }
            let packet = SocketIOPacket(
                kind: attachments.isEmpty ? .ack : .binaryAck, namespace: namespace, ackID: id,
                data: .array(arguments), attachmentCount: attachments.count)
            deliver(packet, attachments: attachments)
        }
    }

    /// Sends a message encoded once for all recipients of a broadcast. On the socket's own
    /// loop it goes straight through, without a closure per recipient. `callerLoop` is the loop
    /// the broadcast runs on, found once for all recipients (nil off any loop): comparing it is
    /// cheaper than asking each socket's loop whether it is the current thread.
    func sendEncoded(_ message: OutboundMessage, callerLoop: EventLoop?) {
        if let callerLoop, callerLoop === session.eventLoop {
            if isConnected {
                if message.offset != 0 { keep(message) }
                session.send(message)
            } else {
                queue(message)
            }
        } else {
            session.eventLoop.execute { [self] in
                if isConnected {
                    if message.offset != 0 { keep(message) }
                    session.send(message)
                } else {
                    queue(message)
                }
            }
        }
    }

    /// Stops reading what the client sends while the application has too much of it pending
    /// (isolated plugins: events sent to a runner and not answered yet), as the server does while
    /// the client is slow to read: a client cannot then queue more than the application takes.
    /// Holds nest; on the socket's loop. WebSocket only: long-polling posts are bounded already.
    public func holdInput() {
        session.holdInput()
    }

    /// Ends one `holdInput`; reading resumes when none is left.
    public func releaseInput() {
        session.releaseInput()
    }

    /// Disconnects this namespace (DISCONNECT packet); the session ends when no namespace is left.
    public func disconnect() {
        onLoop { [self] in
            if case .handedOver(let next) = lifecycle { return next.disconnect() }
            if case .detached = lifecycle { return endDetached(reason: .serverNamespaceDisconnect) }
            guard isAccepted else { return }
            session.socketIO.send(SocketIOPacket(kind: .disconnect, namespace: namespace))
            session.socketIO.finish(self, reason: .serverNamespaceDisconnect)
            if !session.socketIO.hasConnectedNamespace {
                session.close(reason: .serverNamespaceDisconnect)
            }
        }
    }

    func receiveAck(id: Int, arguments: [JSONValue], attachments: [ByteBuffer]) {
        guard let pending = pendingAcks.removeValue(forKey: id) else { return }
        pending.timeout?.cancel()
        pending.call(.answered(arguments, attachments))
    }

    // MARK: Channels

    /// Joins `channel` server-side, without asking the application.
    public func join(_ channel: String) {
        onLoop { [self] in
            guard !isFinished, channelSet.insert(channel).inserted else { return }
            namespaceRegistry.join(self, channel: channel)
        }
    }

    /// Leaves `channel` server-side; the application's `unsubscribe` runs first.
    public func leave(_ channel: String) {
        onLoop { [self] in
            guard channelSet.contains(channel) else { return }
            session.context.application.unsubscribe(self, channel: channel)
            channelSet.remove(channel)
            namespaceRegistry.leave(self, channel: channel)
        }
    }

    func leaveAllChannels() {
        channelsAtDisconnect = channelSet
        for channel in channelSet.sorted() {
            session.context.application.unsubscribe(self, channel: channel)
            namespaceRegistry.leave(self, channel: channel)
        }
        channelSet.removeAll()
    }

    func clientSubscribe(_ event: IncomingEvent) {
        let application = session.context.application
        let reply = { [self] (arguments: [JSONValue]) in
            if let ackID = event.ackID { ack(ackID, arguments) }
        }
        guard let channel = ChannelName.validate(event.arguments.first) else {
            reply([false, "invalid channel name"])
            return
        }
        if channelSet.contains(channel) {
            reply([true])
            return
        }
        guard channelSet.count < session.context.configuration.maxChannelsPerSocket else {
            reply([false, "too many channels"])
            return
        }
        channelSet.insert(channel)
        namespaceRegistry.join(self, channel: channel)
        switch application.subscribe(self, channel: channel) {
        case .accept:
            reply([true])
        case .refuse(let reason):
            channelSet.remove(channel)
            namespaceRegistry.leave(self, channel: channel)
            reply([false, .string(reason)])
        case .later:
            // Out of the channel until accepted: a subscription waiting for a check hears
            // nothing of the channel.
            channelSet.remove(channel)
            namespaceRegistry.leave(self, channel: channel)
            wait(for: .subscribe(channel: channel, ackID: event.ackID))
        }
    }

    // MARK: Events finished later

    /// The application finishes the event it is handling later: hold what the client sends
    /// next.
    func wait(for event: EventHold.Waiting) {
        guard !isFinished else { return }
        if let hold {
            hold.waiting = event
        } else {
            hold = EventHold(event)
        }
    }

    /// Ends a `ConnectDecision.later`. Any thread; it runs on the loop after the caller's task,
    /// never inside it, so a handler may call it. Nothing happens once the socket is gone, or
    /// when it is not waiting for its CONNECT.
    public func completeConnect(_ decision: ConnectDecision) {
        guard decision != .later else { return }
        session.eventLoop.execute { [self] in
            guard case .connect? = hold?.waiting else { return }
            hold = nil
            session.socketIO.completeConnect(self, decision)
        }
    }

    /// Ends a `SubscribeDecision.later`, then handles what the client sent meanwhile. As
    /// `completeConnect`.
    public func completeSubscribe(_ decision: SubscribeDecision) {
        guard decision != .later else { return }
        session.eventLoop.execute { [self] in
            guard let hold, case .subscribe(let channel, let ackID)? = hold.waiting else { return }
            hold.waiting = nil
            let reply = { [self] (arguments: [JSONValue]) in
                if let ackID { ack(ackID, arguments) }
            }
            switch decision {
            case .accept:
                if channelSet.contains(channel) {
                    reply([true])
                } else if channelSet.count < session.context.configuration.maxChannelsPerSocket {
                    channelSet.insert(channel)
                    namespaceRegistry.join(self, channel: channel)
                    reply([true])
                } else {
                    reply([false, "too many channels"])
                }
            case .refuse(let reason):
                reply([false, .string(reason)])
            case .later:
                break
            }
            session.socketIO.releaseHeld(self)
        }
    }

    /// Ends a `MessageDecision.later`, then handles what the client sent meanwhile. As
    /// `completeConnect`.
    public func completeMessage() {
        session.eventLoop.execute { [self] in
            guard let hold, case .message? = hold.waiting else { return }
            hold.waiting = nil
            session.socketIO.releaseHeld(self)
        }
    }

    func clientUnsubscribe(_ event: IncomingEvent) {
        let reply = { [self] (arguments: [JSONValue]) in
            if let ackID = event.ackID { ack(ackID, arguments) }
        }
        guard let channel = ChannelName.validate(event.arguments.first) else {
            reply([false, "invalid channel name"])
            return
        }
        guard channelSet.contains(channel) else {
            reply([false, "not subscribed"])
            return
        }
        leave(channel)
        reply([true])
    }
}

/// Sends what waited behind a socket's CONNECT acknowledgement: a scheduled callback, which
/// needs no promise or closure.
private struct ReleaseQueued: NIOScheduledCallbackHandler, Sendable {
    let socket: Socket

    func handleScheduledCallback(eventLoop: some EventLoop) {
        socket.releaseQueued()
    }
}

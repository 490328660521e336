import NIOCore

/// A socket's recovery state — what it was sent lately, and when its window ends — boxed so
/// that a server without recovery pays one pointer. Touched on the socket's loop only; handed
/// over whole to the socket that recovers it.
final class RecoveryBox: RecoveryLog<OutboundMessage> {
    var expiry: Scheduled<Void>?
    /// The last offset taken when the socket joined each of its channels: their histories
    /// hold what it was sent there after it.
    var joinedAt = JoinOffsets()

    convenience init(_ settings: RecoverySettings) {
        self.init(maxBytes: settings.maxBytes, window: settings.windowNanoseconds)
    }
}

/// What a recovered socket takes over from the one whose transport was lost.
struct Handover {
    var channels: Set<String>
    var userData: AnyObject?
    /// What the client did not get, in order.
    var missed: [OutboundMessage]
    var joinedAt: JoinOffsets
}

/// The offset at which a socket joined each of its channels: a few pairs, so an array (an idle
/// subscribed socket pays less for it than for a dictionary).
struct JoinOffsets {
    private var pairs: [(channel: String, offset: UInt64)] = []

    subscript(channel: String) -> UInt64? {
        pairs.first { $0.channel == channel }?.offset
    }

    /// Notes `channel` joined at `offset`, forgetting those of channels no longer in `current`.
    mutating func note(_ channel: String, at offset: UInt64, current: Set<String>) {
        pairs.removeAll { $0.channel == channel || !current.contains($0.channel) }
        pairs.append((channel, offset))
    }
}

/// Connection state recovery (docs/events.md, "Recovery"): a socket whose transport is lost
/// for a reason the client did not choose stays — in its channels, with its context — for the
/// recovery window, keeping what it is sent. The application hears nothing meanwhile. The
/// client that comes back with the socket's private id and its last offset gets it back with
/// what it missed; otherwise, when the window passes, the socket ends as it would have at once
/// (disconnect with the original reason, unsubscribes, finish).
extension Socket {
    /// Keeps the socket for the window instead of finishing it: false when it cannot be
    /// recovered (recovery off, a reason the client chose, not accepted yet, an event waiting
    /// for the application).
    func detach(reason: DisconnectReason) -> Bool {
        guard let settings = session.context.recovery, let pid, RecoverySettings.isRecoverable(reason),
              hold == nil else { return false }
        let recovery = self.recovery ?? RecoveryBox(settings)
        self.recovery = recovery
        switch lifecycle {
        case .connected, .acknowledging: break
        case .connecting, .finished, .detached, .handedOver: return false
        }
        lifecycle = .detached(reason)
        // An acknowledgement cannot come from a client that is away (socket.io does not keep
        // them either): those awaited end as `disconnected`, as on any disconnect.
        let pending = pendingAcks.sorted { $0.key < $1.key }
        pendingAcks = [:]
        for (_, ack) in pending {
            ack.timeout?.cancel()
            ack.call(.disconnected)
        }
        session.context.recoverable.withLockedValue { $0[pid] = self }
        namespaceRegistry.setAway(id, pid: pid)
        recovery.expiry = session.eventLoop.scheduleTask(in: .nanoseconds(Int64(settings.windowNanoseconds))) { [self] in
            expire()
        }
        return true
    }

    /// The window passed without the client.
    func expire() {
        guard case .detached(let reason) = lifecycle, let pid else { return }
        session.context.recoverable.withLockedValue { table in
            if table[pid] === self { table.removeValue(forKey: pid) }
        }
        finishDetached(reason)
    }

    /// The server disconnects a socket that is away, or shuts down: it ends now.
    func endDetached(reason: DisconnectReason) {
        guard case .detached = lifecycle, let pid else { return }
        session.context.recoverable.withLockedValue { table in
            if table[pid] === self { table.removeValue(forKey: pid) }
        }
        finishDetached(reason)
    }

    /// The end a lost transport would have brought at once, with its reason.
    private func finishDetached(_ reason: DisconnectReason) {
        recovery?.expiry?.cancel()
        let context = session.context
        namespaceRegistry.remove(self)
        context.disconnects.record(reason)
        context.metrics?.disconnected(reason)
        context.application.disconnect(self, reason: reason)
        leaveAllChannels()
        markFinished()
        context.application.finish(self)
    }

    /// The client came back with `offset`: `next`, the socket of its new connection, takes this
    /// one's place in the namespace and channels; what is still sent here goes there. Nil when
    /// it cannot be done — no longer detached, or the offset is unknown (older than what was
    /// kept, or never sent): then this socket ends now, since its client has moved on.
    func handOver(to next: Socket, offset: UInt64?) -> Handover? {
        guard case .detached(let reason) = lifecycle else { return nil }
        guard let recovery, let missed = sentLately(after: offset)?.missed else {
            finishDetached(reason)
            return nil
        }
        recovery.expiry?.cancel()
        lifecycle = .handedOver(next)
        namespaceRegistry.replace(self, with: next, channels: channelSet)
        return Handover(channels: channelSet, userData: userData, missed: missed, joinedAt: recovery.joinedAt)
    }

    /// The client came back to another node of the cluster (`localNode` is this one): this
    /// socket ends here as it would past the window, and what it was sent goes there. Nil when
    /// it cannot be recovered (as `handOver`).
    func moveAway(offset: UInt64?, localNode: String) -> RecoveredSocket? {
        guard case .detached(let reason) = lifecycle else { return nil }
        var state: RecoveredSocket?
        if let (missed, sent) = sentLately(after: offset) {
            state = RecoveredSocket(
                channels: channelSet.sorted(), value: namespaceRegistry.value(of: id),
                missed: missed.compactMap { message in
                    guard let packet = RecoverySettings.removing(message.offset, from: message.packets[0].payload) else { return nil }
                    return .init(packet: packet, attachments: message.packets.dropFirst().map(\.payload),
                                 tag: message.tag(localNode: localNode))
                },
                seen: sent.map { $0.tag(localNode: localNode) })
        }
        finishDetached(reason)
        return state
    }

    /// Records when the socket joined `channel`, with recovery: on its loop.
    func noteJoined(_ channel: String) {
        guard let settings = session.context.recovery else { return }
        let box = recovery ?? RecoveryBox(settings)
        recovery = box
        box.joinedAt.note(channel, at: settings.lastOffset, current: channelSet)
    }

    private func channelHistories() -> [(String, ChannelHistory)] {
        channelSet.sorted().compactMap { channel in namespaceRegistry.existingHistory(channel).map { (channel, $0) } }
    }

    /// What the client missed after `offset` — this socket's own log and the histories of its
    /// channels, in offset order — and everything it was sent that is still kept, both read
    /// from one look at each history (another node drops what it holds that is in `sent`: a
    /// message kept between two looks would be in neither). Nil when `offset` is not one it was
    /// sent, or some of what came after is no longer kept.
    func sentLately(after offset: UInt64?) -> (missed: [OutboundMessage], sent: [OutboundMessage])? {
        guard let offset, let recovery else { return nil }
        if keepsEverything {
            guard let missed = recovery.after(offset) else { return nil }
            return (missed, recovery.messages)
        }
        guard recovery.evictedUpTo <= offset else { return nil }
        var known = recovery.contains(offset)
        var sent = recovery.messages
        var missed = recovery.messages(after: offset)
        for (channel, history) in channelHistories() {
            let joinedAt = recovery.joinedAt[channel] ?? 0
            let (messages, evictedUpTo) = history.sent(since: joinedAt, to: id)
            guard evictedUpTo <= max(offset, joinedAt) else { return nil }
            if offset > joinedAt, messages.contains(where: { $0.offset == offset }) { known = true }
            sent += messages
            missed += messages.filter { $0.offset > offset }
        }
        guard known else { return nil }
        return (missed.sorted { $0.offset < $1.offset }, sent)
    }

    /// A socket recovered from another node, on its loop before its acknowledgement: it held
    /// the channels the cluster knew while it asked; it takes the old node's state, and queues
    /// what was missed ahead of what arrived here since, without what the old node sent already.
    func adopt(_ state: RecoveredSocket, localNode: String) {
        let wanted = Set(state.channels)
        for channel in channelSet.subtracting(wanted).sorted() {
            channelSet.remove(channel)
            namespaceRegistry.leave(self, channel: channel)
        }
        for channel in wanted.subtracting(channelSet).sorted() {
            channelSet.insert(channel)
            namespaceRegistry.join(self, channel: channel)
        }
        if let value = state.value { _ = namespaceRegistry.setValue(value, of: id) }
        guard case .connecting(let arrived) = lifecycle, let settings = session.context.recovery else { return }
        let seen = Set(state.seen)
        let context = session.context
        // All of it gets offsets of this node, in the order it goes: what arrived meanwhile is
        // copied out of its channel's history, whose offsets for it came before these.
        let queue = state.missed.map { context.incoming($0.packet, $0.attachments, tag: $0.tag) }
            + arrived.compactMap { message -> OutboundMessage? in
                guard message.offset != 0 else { return message }
                guard !seen.contains(message.tag(localNode: localNode)) else { return nil }
                guard let packet = RecoverySettings.removing(message.offset, from: message.packets[0].payload) else { return message }
                return context.incoming(packet, message.packets.dropFirst().map(\.payload), tag: message.tag(localNode: localNode))
            }
        // What this socket keeps is what it sends, from here on all of it.
        recovery = RecoveryBox(settings)
        keepsEverything = true
        for message in queue { keep(message) }
        lifecycle = .connecting(beforeConnect: queue)
    }

    /// Gives up a socket that asked another node for its state in vain: the application never
    /// saw it, so it leaves quietly.
    func abandon() {
        for channel in channelSet.sorted() { namespaceRegistry.leave(self, channel: channel) }
        channelSet.removeAll()
        namespaceRegistry.remove(self)
        lifecycle = .finished
    }

    /// The recovered socket, on its loop before its acknowledgement: takes the old one's state,
    /// and queues what was missed ahead of what arrived since (each once, by offset).
    func takeOver(_ handover: Handover) {
        channelSet = handover.channels
        userData = handover.userData
        guard let settings = session.context.recovery else { return }
        let box = RecoveryBox(settings)
        box.joinedAt = handover.joinedAt
        recovery = box
        keepsEverything = true
        guard case .connecting(let arrived) = lifecycle else { return }
        let replayed = Set(handover.missed.map(\.offset))
        let queue = handover.missed + arrived.filter { $0.offset == 0 || !replayed.contains($0.offset) }
        // The log restarts with what goes now, in the order it goes.
        for message in queue { keep(message) }
        lifecycle = .connecting(beforeConnect: queue)
    }
}

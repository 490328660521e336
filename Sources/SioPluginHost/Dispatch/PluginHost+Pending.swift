import CSioPlugin
import Logging
import NIOCore
import SocketIOCodec
import SocketIOServer

/// Events finished later (ABI 1.3): `defer` during a handler, `complete` from any thread, the
/// operator's timeout, and the socket going first. The server core holds the socket's next
/// packets meanwhile (`ConnectDecision.later` and its kin); this side only decides when and
/// how the event ends. Everything but `complete` runs on the socket's loop.
extension PluginHost {
    /// `api->defer`: a ticket for the running handler, or nil when the event cannot wait.
    func deferEvent(in scope: EventScope) -> sio_ticket? {
        guard scope.deferrable, scope.handlerTicket == 0, let plugin = scope.plugin else { return nil }
        guard let ticket = issueTicket(in: scope, pluginName: plugin.name, summary: plugin.summaryForWatchdog) else { return nil }
        scope.handlerTicket = ticket
        return ticket
    }

    /// A ticket of the scope's event for `pluginName`: a handler's `defer`, or an isolated
    /// plugin's event on its way to the runner.
    func issueTicket(in scope: EventScope, pluginName: String, summary: String) -> sio_ticket? {
        guard scope.deferrable else { return nil }
        let pending: PendingEvent
        if let existing = scope.pending {
            pending = existing
        } else {
            pending = PendingEvent(socket: scope.socket, kind: scope.kind, ackID: scope.ackID)
            scope.pending = pending
            // Where `finish` finds it, should a handler disconnect the socket before the
            // dispatch ends.
            scope.socket.hostState.pending = pending
        }
        guard !pending.ended else { return nil }
        let ticket = tickets.issue(for: pending, pluginName: pluginName)
        pending.outstanding[ticket] = summary
        return ticket
    }

    /// The handler that took `ticket` did not return SIO_PENDING: the ticket is void.
    func withdraw(_ ticket: sio_ticket, of pending: PendingEvent?) {
        tickets.withdraw(CollectionOfOne(ticket))
        pending?.outstanding[ticket] = nil
    }

    /// The dispatch that deferred ended: true when the event waits for completions.
    func seal(_ pending: PendingEvent) -> Bool {
        guard !pending.ended else { return false }
        pending.sealed = true
        guard !pending.outstanding.isEmpty else {
            // Every handler that deferred withdrew: nothing to wait for.
            pending.ended = true
            release(pending)
            return false
        }
        let timeout = TimeAmount.nanoseconds(Int64(configuration.pendingTimeout.nanoseconds))
        pending.timeout = pending.socket.eventLoop.scheduleTask(in: timeout) { [self] in expire(pending) }
        return true
    }

    /// The event's refusal, or its socket's end: outstanding tickets die with it.
    func abandon(_ pending: PendingEvent) {
        pending.ended = true
        pending.timeout?.cancel()
        tickets.withdraw(pending.outstanding.keys)
        pending.outstanding = [:]
        release(pending)
    }

    private func release(_ pending: PendingEvent) {
        if let state = pending.socket.existingHostState, state.pending === pending { state.pending = nil }
    }

    /// `api->complete`, on any thread: SIO_ERR_STATE when the ticket is not (or no longer) the
    /// plugin's to complete. `name`: the plugin's, whichever of its versions completes.
    func complete(_ ticket: sio_ticket, by name: String, decision: sio_status, reason: String?,
                  ackArguments: [JSONValue]?) -> sio_status {
        guard let entry = tickets.take(ticket, pluginName: name) else { return SIO_ERR_STATE }
        let pending = entry.event
        pending.socket.eventLoop.execute { [self] in
            let summary = pending.outstanding[ticket] ?? name
            guard !pending.ended, pending.outstanding.removeValue(forKey: ticket) != nil else { return }
            switch decision {
            case SIO_OK:
                break
            case SIO_REFUSE where pending.kind != SIO_EVENT_MESSAGE:
                if pending.refusal == nil { pending.refusal = reason ?? "refused" }
            default:
                let why = reason ?? (decision == SIO_REFUSE ? "a message cannot be refused" : "handler failed")
                if pending.kind == SIO_EVENT_CONNECT {
                    if pending.refusal == nil { pending.refusal = why }
                } else {
                    pending.failures.append((summary, "\(name): \(why)"))
                }
            }
            if pending.ackArguments == nil, let ackArguments { pending.ackArguments = ackArguments }
            if pending.sealed, pending.outstanding.isEmpty { end(pending) }
        }
        return SIO_OK
    }

    /// `--pending-timeout` passed with tickets out: a connection or subscription is refused, a
    /// message released with an error.
    private func expire(_ pending: PendingEvent) {
        guard !pending.ended, !pending.outstanding.isEmpty else { return }
        let late = pending.outstanding.values.sorted()
        tickets.withdraw(pending.outstanding.keys)
        pending.outstanding = [:]
        let milliseconds = configuration.pendingTimeout.nanoseconds / 1_000_000
        logger.warning("deferred event not completed in time", metadata: [
            "socket": "\(pending.socket.id)", "plugin": "\(late.joined(separator: ", "))",
            "event": "\(LoadedPlugin.eventNames[Int(pending.kind.rawValue)])", "timeout_ms": "\(milliseconds)",
        ])
        if pending.kind == SIO_EVENT_MESSAGE {
            for plugin in late { pending.failures.append((plugin, "\(plugin): not completed within \(milliseconds) ms")) }
        } else if pending.refusal == nil {
            pending.refusal = "timed out"
        }
        end(pending)
    }

    /// Every ticket is in: the core learns the outcome and hands the socket's held packets on.
    private func end(_ pending: PendingEvent) {
        pending.ended = true
        pending.timeout?.cancel()
        release(pending)
        let socket = pending.socket
        switch pending.kind {
        case SIO_EVENT_CONNECT:
            socket.completeConnect(pending.refusal.map { .refuse(message: $0) } ?? .accept)
        case SIO_EVENT_SUBSCRIBE:
            for failure in pending.failures { raiseError(socket, failure.message, plugin: failure.plugin) }
            socket.completeSubscribe(pending.refusal.map { .refuse(reason: $0) } ?? .accept)
        default:
            if let id = pending.ackID, let arguments = pending.ackArguments { socket.ack(id, arguments) }
            for failure in pending.failures { raiseError(socket, failure.message, plugin: failure.plugin) }
            socket.completeMessage()
        }
    }
}

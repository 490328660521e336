import NIOCore
import SocketIOCodec

/// An Engine.IO session's transport state, each state with the data it owns, and what each
/// event does in it, as actions for `EngineSession` to carry out. Pure: every transition is
/// unit tested without sockets.
///
/// Generic over the WebSocket output and the parked GET's responder only so that tests can
/// stand in for them; the server uses `WebSocketOutput` and a response closure.
struct EngineSessionState<WebSocket: AnyObject, Poll> {
    enum State {
        /// Long-polling, no upgrade under way; `poll` is the GET held until there is something
        /// to send.
        case polling(outbox: PollingOutbox, poll: Poll?)
        /// Long-polling while a WebSocket probe is open: polls still work until `5` arrives.
        case probing(outbox: PollingOutbox, poll: Poll?, probe: WebSocket)
        case webSocket(WebSocket)
        /// Closed by the server while no GET was parked: one more GET reads what was queued (a
        /// DISCONNECT, then the close packet) instead of a "Session ID unknown".
        case draining(outbox: PollingOutbox)
        case closed
    }

    private(set) var state: State

    init(webSocket: WebSocket?) {
        state = webSocket.map { .webSocket($0) } ?? .polling(outbox: PollingOutbox(), poll: nil)
    }

    var isClosed: Bool {
        switch state {
        case .closed, .draining: return true
        default: return false
        }
    }

    var webSocket: WebSocket? {
        if case .webSocket(let webSocket) = state { return webSocket }
        return nil
    }

    var probe: WebSocket? {
        if case .probing(_, _, let probe) = state { return probe }
        return nil
    }

    // MARK: Sending

    enum SendAction {
        case none
        case write(WebSocket)
        case answer(Poll, ByteBuffer)
        /// The outbox passed the limit: close the session as a slow consumer.
        case overflow
    }

    /// `packets` is only evaluated for a polling session: a WebSocket takes the message's
    /// frames, and a broadcast reaches most sockets through this path.
    mutating func send(_ packets: @autoclosure () -> [EngineIOPacket], limit: Int) -> SendAction {
        if case .webSocket(let webSocket) = state { return .write(webSocket) }
        switch state {
        case .closed, .draining, .webSocket:
            return .none
        case .polling(var outbox, let poll):
            outbox.append(contentsOf: packets())
            if outbox.bytes > limit {
                state = .polling(outbox: outbox, poll: poll)
                return .overflow
            }
            return flush(&outbox, poll) { .polling(outbox: $0, poll: $1) }
        case .probing(var outbox, let poll, let probe):
            outbox.append(contentsOf: packets())
            if outbox.bytes > limit {
                state = .probing(outbox: outbox, poll: poll, probe: probe)
                return .overflow
            }
            return flush(&outbox, poll) { .probing(outbox: $0, poll: $1, probe: probe) }
        }
    }

    /// Answers the parked GET when there is something to send; `rebuild` puts the state back
    /// with what is left.
    private mutating func flush(_ outbox: inout PollingOutbox, _ poll: Poll?, rebuild: (PollingOutbox, Poll?) -> State) -> SendAction {
        guard let poll, !outbox.isEmpty else {
            state = rebuild(outbox, poll)
            return .none
        }
        let body = outbox.takePayload()
        state = rebuild(outbox, nil)
        return .answer(poll, body)
    }

    // MARK: Long-polling

    enum PollAction {
        case answer(Poll, ByteBuffer)
        /// Parked, nothing to send yet.
        case parked
        case refuse(Poll, EngineHTTPError)
        /// The last GET of a draining session: answer it, and the session is gone.
        case answerAndForget(Poll, ByteBuffer)
        /// A second GET while one is parked: the protocol says to close the session.
        case overlap(Poll)
    }

    mutating func poll(_ poll: Poll) -> PollAction {
        switch state {
        case .draining(var outbox):
            // What was queued goes first; the close packet comes alone in a later poll: the
            // JavaScript client handles Socket.IO packets on the next tick but a close at once,
            // so a DISCONNECT sharing a payload with the close would read as "transport close".
            if outbox.isEmpty {
                state = .closed
                return .answerAndForget(poll, PollingOutbox.payload(EngineIOPacket(.close)))
            }
            let body = outbox.takePayload()
            state = .draining(outbox: outbox)
            return .answer(poll, body)
        case .closed:
            return .refuse(poll, .unknownSession)
        case .webSocket:
            return .refuse(poll, .badRequest)
        case .polling(var outbox, let parked):
            if parked != nil { return .overlap(poll) }
            return pollAction(flush(&outbox, poll) { .polling(outbox: $0, poll: $1) })
        case .probing(var outbox, let parked, let probe):
            if parked != nil { return .overlap(poll) }
            // Answered at once, with a noop if nothing is queued: during an upgrade the client
            // waits for its poll to return before it sends `5` ("fast upgrade").
            if outbox.isEmpty { outbox.append(contentsOf: [EngineIOPacket(.noop)]) }
            return pollAction(flush(&outbox, poll) { .probing(outbox: $0, poll: $1, probe: probe) })
        }
    }

    private func pollAction(_ action: SendAction) -> PollAction {
        if case .answer(let poll, let body) = action { return .answer(poll, body) }
        return .parked
    }

    /// Whether a POST may deliver packets now, and the refusal if not.
    var postRefusal: EngineHTTPError? {
        switch state {
        case .polling, .probing: return nil
        case .webSocket: return .badRequest
        case .closed, .draining: return .unknownSession
        }
    }

    /// A long-poll client closing by POST: its parked GET ends with a noop, as the reference
    /// server answers, before the session closes.
    mutating func takeParkedPoll() -> Poll? {
        switch state {
        case .polling(let outbox, let poll?):
            state = .polling(outbox: outbox, poll: nil)
            return poll
        case .probing(let outbox, let poll?, let probe):
            state = .probing(outbox: outbox, poll: nil, probe: probe)
            return poll
        default:
            return nil
        }
    }

    // MARK: Upgrade

    /// A WebSocket carrying this session's sid has connected and waits for `2probe`.
    mutating func beginProbe(_ probe: WebSocket) -> Bool {
        guard case .polling(let outbox, let poll) = state else { return false }
        state = .probing(outbox: outbox, poll: poll, probe: probe)
        return true
    }

    mutating func probeClosed() {
        guard case .probing(let outbox, let poll, _) = state else { return }
        state = .polling(outbox: outbox, poll: poll)
    }

    enum UpgradeAction {
        /// `5` outside a probe: close that WebSocket.
        case refuse
        /// The WebSocket is the transport now; the parked GET (if any) ends with a noop, and
        /// `queued` goes out on the WebSocket.
        case upgraded(endPoll: Poll?, queued: [EngineIOPacket])
    }

    mutating func completeUpgrade() -> UpgradeAction {
        guard case .probing(var outbox, let poll, let probe) = state else { return .refuse }
        state = .webSocket(probe)
        return .upgraded(endPoll: poll, queued: outbox.takeAll())
    }

    // MARK: Close

    struct CloseAction {
        /// Closed already: nothing to do.
        var alreadyClosed = false
        /// Bytes dropped from the outbox of a slow consumer.
        var droppedBytes = 0
        /// The session stays registered until its last GET, or the drain timeout.
        var draining = false
        /// Write the close packet to it first when the server initiated the close.
        var webSocket: WebSocket?
        var probe: WebSocket?
        /// The parked GET, answered with what was queued and the close packet.
        var poll: (Poll, ByteBuffer)?
    }

    mutating func close(serverInitiated: Bool, slowConsumer: Bool, shutdown: Bool) -> CloseAction {
        var action = CloseAction()
        switch state {
        case .closed, .draining:
            action.alreadyClosed = true
            return action
        case .webSocket(let webSocket):
            action.webSocket = webSocket
        case .polling(var outbox, let poll), .probing(var outbox, let poll, _):
            action.probe = probe
            if slowConsumer {
                // What it did not read is dropped, not sent on a last poll.
                action.droppedBytes = outbox.bytes
                outbox = PollingOutbox()
            }
            if let poll {
                action.poll = (poll, outbox.takePayload(then: EngineIOPacket(.close)))
            } else if serverInitiated, !shutdown {
                action.draining = true
                state = .draining(outbox: outbox)
                return action
            }
        }
        state = .closed
        return action
    }

    /// The drain timeout: a draining session nobody polled is dropped. True if it was draining.
    mutating func drainTimedOut() -> Bool {
        guard case .draining = state else { return false }
        state = .closed
        return true
    }
}

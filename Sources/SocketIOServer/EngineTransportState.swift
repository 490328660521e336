/// Which transport an Engine.IO session uses, and what each kind of request may do in each
/// state. Pure, so every transition is unit tested without sockets.
struct EngineTransportState: Equatable {
    enum State: Equatable {
        /// Long-polling, no upgrade under way.
        case polling
        /// Long-polling while a WebSocket probe is open: polls still work until `5` arrives.
        case probing
        case webSocket
        case closed
    }

    enum PollAction: Equatable {
        /// Hold the GET until there is something to send.
        case park
        /// Answer at once, with a noop if nothing is queued: during an upgrade the client waits
        /// for its poll to return before it sends `5`, as the reference server's "fast upgrade".
        case answerNow
        case refuse(EngineHTTPError)
        /// A second GET while one is parked: the protocol says to close the session.
        case overlap
    }

    private(set) var state: State

    init() { state = .polling }
    init(webSocket: ()) { state = .webSocket }

    var isClosed: Bool { state == .closed }
    var isWebSocket: Bool { state == .webSocket }
    var acceptsPolling: Bool { state == .polling || state == .probing }

    func pollRequested(hasPendingPoll: Bool) -> PollAction {
        switch state {
        case .closed: return .refuse(.unknownSession)
        case .webSocket: return .refuse(.badRequest)
        case .polling: return hasPendingPoll ? .overlap : .park
        case .probing: return hasPendingPoll ? .overlap : .answerNow
        }
    }

    mutating func beginProbe() -> Bool {
        guard state == .polling else { return false }
        state = .probing
        return true
    }

    mutating func probeFailed() {
        if state == .probing { state = .polling }
    }

    mutating func completeUpgrade() -> Bool {
        guard state == .probing else { return false }
        state = .webSocket
        return true
    }

    /// Returns false when already closed, so that closing twice is harmless.
    mutating func close() -> Bool {
        guard state != .closed else { return false }
        state = .closed
        return true
    }
}

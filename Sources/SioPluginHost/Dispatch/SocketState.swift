import SocketIOServer

/// What the host keeps per socket: the context of the ABI, alive from connect to finish and
/// independent of any plugin, so reloads leave it untouched. Made on the first context call
/// (or the first message to an isolated plugin): a socket whose handlers keep no context costs
/// nothing here.
final class SocketState {
    var context: [[UInt8]: [UInt8]] = [:]
    /// The event plugins finish later, from its first `defer` to its end.
    var pending: PendingEvent?
    /// The client's messages sent to runners and not answered yet, and whether reading from
    /// the client is held for them (`PluginRunner.backlogHold`). On the socket's loop.
    var runnerBacklog = 0
    var inputHeld = false
}

extension Socket {
    var hostState: SocketState {
        if let state = userData as? SocketState { return state }
        let state = SocketState()
        userData = state
        return state
    }

    /// The state if a context call made it, without making it.
    var existingHostState: SocketState? {
        userData as? SocketState
    }
}

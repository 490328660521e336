import SocketIOServer

/// What the host keeps per socket: the context of the ABI, alive from connect to finish and
/// independent of any plugin, so reloads leave it untouched.
final class SocketState {
    var context: [[UInt8]: [UInt8]] = [:]
    let request: RequestView

    init(request: HandshakeRequest) {
        self.request = RequestView(request)
    }
}

extension Socket {
    var hostState: SocketState {
        if let state = userData as? SocketState { return state }
        let state = SocketState(request: request)
        userData = state
        return state
    }
}

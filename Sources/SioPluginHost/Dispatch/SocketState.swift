import CSioPlugin
import SocketIOServer

/// What the host keeps per socket: the context of the ABI, alive from connect to finish and
/// independent of any plugin, so reloads leave it untouched.
final class SocketState {
    var context: [[UInt8]: [UInt8]] = [:]
    /// The socket's request as C reads it (`RequestView`), valid while `handshake` is kept.
    let request: UnsafePointer<sio_request>
    private let handshake: HandshakeRequest

    init(request: HandshakeRequest) {
        self.handshake = request
        self.request = UnsafePointer(RequestView.make(request))
    }

    deinit {
        UnsafeMutablePointer(mutating: request).deallocate()
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

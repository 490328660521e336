import CSioPlugin
import SocketIOServer

/// One event being delivered: its address is the `sio_socket *` handlers see, valid until the
/// dispatch returns. Host functions reach the socket, the arena and the handler's reason
/// through it.
final class EventScope {
    let socket: SocketIOSocket
    unowned let host: PluginHost
    let arena = CArena()
    var reason: String?
    private(set) var isOpen = true

    init(socket: SocketIOSocket, host: PluginHost) {
        self.socket = socket
        self.host = host
    }

    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// The scope behind a handle, while its event is being delivered; nil afterwards.
    static func from(_ handle: OpaquePointer?) -> EventScope? {
        guard let handle else { return nil }
        let scope = Unmanaged<EventScope>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
        return scope.isOpen ? scope : nil
    }

    func close() {
        isOpen = false
    }
}

import CSioPlugin
import SocketIOServer

/// The `sio_request` of a socket, built once per socket: the request never changes, and
/// handlers read it on every event.
final class RequestView {
    private let arena: CArena
    let pointer: UnsafePointer<sio_request>

    init(_ request: HandshakeRequest) {
        let arena = CArena()
        self.arena = arena
        let headers = request.headers.map { sio_header(name: arena.buf($0.name), value: arena.buf($0.value)) }
        var view = sio_request()
        view.struct_size = MemoryLayout<sio_request>.size
        view.method = arena.buf(request.method)
        view.path = arena.buf(request.path)
        view.query = arena.buf(request.query)
        view.remote_addr = arena.buf(request.remoteAddress)
        view.headers = arena.array(headers)
        view.header_count = headers.count
        pointer = arena.value(view)
    }
}

import CSioPlugin
import SocketIOServer

/// The `sio_request` of an event.
///
/// Its strings and headers are the request's own storage, which `HandshakeRequest` lays out as
/// the `sio_buf` and `sio_header` arrays C reads (checked by `layoutMatches`): only the small
/// `sio_request` itself is made, in the event's arena, so an idle socket keeps no copy of its
/// request for C. The socket holds the request, so it outlives the event.
enum RequestView {
    static func make(_ request: HandshakeRequest, in arena: CArena) -> UnsafePointer<sio_request> {
        precondition(layoutMatches, "HandshakeRequest's string table no longer has the layout of sio_buf")
        let table = request.cStringTable.assumingMemoryBound(to: sio_buf.self)
        var view = sio_request()
        view.struct_size = MemoryLayout<sio_request>.size
        view.method = table[0]
        view.path = table[1]
        view.query = table[2]
        view.remote_addr = table[3]
        view.headers = request.headerCount == 0 ? nil : UnsafeRawPointer(table + 4).assumingMemoryBound(to: sio_header.self)
        view.header_count = request.headerCount
        return arena.value(view)
    }

    /// The request's table is pairs of a pointer and an `Int`: a `sio_buf`, and two of them a
    /// `sio_header`.
    static let layoutMatches = MemoryLayout<sio_buf>.stride == MemoryLayout<UnsafePointer<CChar>?>.stride + MemoryLayout<Int>.stride
        && MemoryLayout<sio_buf>.offset(of: \.len) == MemoryLayout<UnsafePointer<CChar>?>.stride
        && MemoryLayout<sio_header>.stride == 2 * MemoryLayout<sio_buf>.stride
        && MemoryLayout<sio_header>.offset(of: \.value) == MemoryLayout<sio_buf>.stride
}

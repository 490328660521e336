import CSioPlugin
import SocketIOServer

/// The `sio_request` of a socket, built once per socket: the request never changes, and
/// handlers read it on every event.
///
/// It lives as long as its socket, idle or not, so it is laid out in one allocation — the
/// struct, then the header array, then every string NUL-terminated — rather than one per
/// string: a browser's request has some thirty of those.
final class RequestView {
    private let block: UnsafeMutableRawPointer
    let pointer: UnsafePointer<sio_request>

    init(_ request: HandshakeRequest) {
        let headerOffset = Self.aligned(MemoryLayout<sio_request>.stride, to: MemoryLayout<sio_header>.alignment)
        let textOffset = headerOffset + request.headers.count * MemoryLayout<sio_header>.stride
        let strings = [request.method, request.path, request.query, request.remoteAddress]
            + request.headers.flatMap { [$0.name, $0.value] }
        let size = textOffset + strings.reduce(0) { $0 + $1.utf8.count + 1 }
        block = .allocate(byteCount: size, alignment: max(MemoryLayout<sio_request>.alignment, MemoryLayout<sio_header>.alignment))

        var cursor = block + textOffset
        func copy(_ string: String) -> sio_buf {
            var string = string
            let count = string.withUTF8 { bytes -> Int in
                if let base = bytes.baseAddress { cursor.copyMemory(from: base, byteCount: bytes.count) }
                return bytes.count
            }
            cursor.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)  // NUL, for C convenience
            defer { cursor += count + 1 }
            return count == 0 ? sio_buf(ptr: nil, len: 0) : sio_buf(ptr: cursor.assumingMemoryBound(to: CChar.self), len: count)
        }

        let headers = (block + headerOffset).bindMemory(to: sio_header.self, capacity: request.headers.count)
        var view = sio_request()
        view.struct_size = MemoryLayout<sio_request>.size
        view.method = copy(request.method)
        view.path = copy(request.path)
        view.query = copy(request.query)
        view.remote_addr = copy(request.remoteAddress)
        for (index, header) in request.headers.enumerated() {
            (headers + index).initialize(to: sio_header(name: copy(header.name), value: copy(header.value)))
        }
        view.headers = request.headers.isEmpty ? nil : UnsafePointer(headers)
        view.header_count = request.headers.count
        let pointer = block.bindMemory(to: sio_request.self, capacity: 1)
        pointer.initialize(to: view)
        self.pointer = UnsafePointer(pointer)
    }

    deinit {
        block.deallocate()
    }

    private static func aligned(_ offset: Int, to alignment: Int) -> Int {
        (offset + alignment - 1) / alignment * alignment
    }
}

import CSioPlugin
@testable import SioPluginHost
import SocketIOServer
import XCTest

/// The C view of a request points into the request's own storage: what a C handler reads must
/// be what the request holds, NUL-terminated, with empty strings as `{NULL, 0}`.
final class RequestViewTests: XCTestCase {
    private func string(_ buffer: sio_buf) -> String? {
        guard let pointer = buffer.ptr else { return buffer.len == 0 ? nil : "<null with a length>" }
        XCTAssertEqual(pointer[buffer.len], 0, "NUL-terminated")
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: buffer.len), as: UTF8.self)
    }

    func testTheViewReadsTheRequest() {
        XCTAssertTrue(RequestView.layoutMatches)
        let request = HandshakeRequest(method: "GET", path: "/socket.io/", query: "EIO=4&transport=websocket&name=Zoë",
                                       headers: [("Host", "chat.example"), ("X-Empty", ""), ("User-Agent", String(repeating: "agent/1.0 ", count: 40))],
                                       remoteAddress: "203.0.113.9")
        let arena = CArena()
        let c = RequestView.make(request, in: arena).pointee
        XCTAssertEqual(c.struct_size, MemoryLayout<sio_request>.size)
        XCTAssertEqual(string(c.method), "GET")
        XCTAssertEqual(string(c.path), "/socket.io/")
        XCTAssertEqual(string(c.query), "EIO=4&transport=websocket&name=Zoë")
        XCTAssertEqual(string(c.remote_addr), "203.0.113.9")
        XCTAssertEqual(c.header_count, 3)
        XCTAssertEqual(string(c.headers[0].name), "Host")
        XCTAssertEqual(string(c.headers[0].value), "chat.example")
        XCTAssertEqual(string(c.headers[1].name), "X-Empty")
        XCTAssertNil(string(c.headers[1].value), "an empty value is {NULL, 0}")
        XCTAssertEqual(string(c.headers[2].value), String(repeating: "agent/1.0 ", count: 40))
    }

    func testARequestWithoutHeaders() {
        let request = HandshakeRequest(method: "GET", path: "/", query: "", headers: [], remoteAddress: "")
        let arena = CArena()
        let c = RequestView.make(request, in: arena).pointee
        XCTAssertNil(c.headers)
        XCTAssertEqual(c.header_count, 0)
        XCTAssertNil(string(c.query))
        XCTAssertEqual(request.query, "")
        XCTAssertEqual(request.headers.count, 0)
    }

    func testTheSwiftViewOfTheSameStorage() {
        let request = HandshakeRequest(method: "POST", path: "/p", query: "a=1&b=%C3%A9", headers: [("Accept", "*/*"), ("Cookie", "x=y")],
                                       remoteAddress: "::1")
        XCTAssertEqual(request.method, "POST")
        XCTAssertEqual(request.headers.map(\.name), ["Accept", "Cookie"])
        XCTAssertEqual(request.header("cookie"), "x=y")
        XCTAssertNil(request.header("missing"))
        XCTAssertEqual(request.queryParameter("b"), "é")
        let copy = request
        XCTAssertEqual(copy.cStringTable, request.cStringTable, "copies share the one allocation")
    }
}

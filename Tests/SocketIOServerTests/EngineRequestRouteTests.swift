import NIOHTTP1
@testable import SocketIOServer
import XCTest

final class EngineRequestRouteTests: XCTestCase {
    func testRoutes() {
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["EIO": "4", "transport": "polling"]), .handshake)
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["EIO": "4", "transport": "polling", "sid": "a"]), .poll(sid: "a"))
        XCTAssertEqual(EngineRequestRoute(method: .POST, query: ["EIO": "4", "transport": "polling", "sid": "a"]), .post(sid: "a"))
    }

    func testErrors() {
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["transport": "polling"]), .failure(.unsupportedProtocolVersion))
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["EIO": "3", "transport": "polling"]), .failure(.unsupportedProtocolVersion))
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["EIO": "4", "transport": "carrier-pigeon"]), .failure(.unknownTransport))
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["EIO": "4"]), .failure(.unknownTransport))
        XCTAssertEqual(EngineRequestRoute(method: .GET, query: ["EIO": "4", "transport": "websocket"]), .failure(.badRequest))
        XCTAssertEqual(EngineRequestRoute(method: .POST, query: ["EIO": "4", "transport": "polling"]), .failure(.badHandshakeMethod))
        XCTAssertEqual(EngineRequestRoute(method: .PUT, query: ["EIO": "4", "transport": "polling", "sid": "a"]), .failure(.badRequest))
    }

    func testErrorBodiesAreTheReferenceServersJSON() {
        XCTAssertEqual(EngineHTTPError.unknownSession.body, #"{"code":1,"message":"Session ID unknown"}"#)
        XCTAssertEqual(EngineHTTPError.unknownTransport.status, 400)
        XCTAssertEqual(EngineHTTPError.payloadTooLarge.status, 413)
    }

    func testQueryStringDecoding() {
        XCTAssertEqual(QueryString.parse("a=1&b=x%20y&c=%E2%82%AC&a=2&d"), ["a": "1", "b": "x y", "c": "€", "d": ""])
    }
}

final class ForwardedForTests: XCTestCase {
    func testHonouredOnlyFromTrustedProxies() {
        XCTAssertEqual(HandshakeRequest.clientAddress(peer: "10.0.0.5", forwardedFor: ["203.0.113.9"], trustedProxies: []), "10.0.0.5")
        XCTAssertEqual(HandshakeRequest.clientAddress(peer: "127.0.0.1", forwardedFor: ["203.0.113.9"], trustedProxies: ["127.0.0.1"]), "203.0.113.9")
        // A client cannot forge its address by sending the header itself: the nearest untrusted hop wins.
        XCTAssertEqual(HandshakeRequest.clientAddress(peer: "127.0.0.1", forwardedFor: ["1.2.3.4, 198.51.100.7"], trustedProxies: ["127.0.0.1"]), "198.51.100.7")
        XCTAssertEqual(HandshakeRequest.clientAddress(peer: "127.0.0.1", forwardedFor: ["198.51.100.7, 10.0.0.2"], trustedProxies: ["127.0.0.1", "10.0.0.2"]), "198.51.100.7")
        XCTAssertEqual(HandshakeRequest.clientAddress(peer: "127.0.0.1", forwardedFor: [], trustedProxies: ["127.0.0.1"]), "127.0.0.1")
    }
}

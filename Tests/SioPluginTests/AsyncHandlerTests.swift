import CSioPlugin
@testable import SioPlugin
import XCTest

/// What an async handler's task carries: the auth payload it decodes, and the one ack it gives.
final class AsyncHandlerTests: XCTestCase {
    private struct Credentials: Decodable, Equatable {
        var token: String
    }

    private func payload(_ text: String) -> Payload {
        var text = text
        return text.withUTF8 { bytes in
            Payload(sio_buf(ptr: bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: bytes.count))
        }
    }

    func testAPayloadDecodesIntoATypeAndSaysWhenNothingWasSent() throws {
        XCTAssertEqual(try payload(#"{"token":"s3cret","extra":1}"#).decode(Credentials.self), Credentials(token: "s3cret"))
        XCTAssertEqual(payload(#"{"token":"x"}"#).json, #"{"token":"x"}"#)
        XCTAssertThrowsError(try payload("").decode(Credentials.self))
        XCTAssertThrowsError(try payload(#"{"token":7}"#).decode(Credentials.self))
        XCTAssertNil(payload("").value)
    }

    func testTheFirstAckWinsAndAMessageWithoutAnAckIDIsNotAnswered() throws {
        var withAck = sio_message()
        withAck.ack_id = 3
        var withoutAck = sio_message()
        withoutAck.ack_id = -1
        let socket = RemoteSocket(id: "abc", namespace: "/")
        try socket.ack(Message(withoutAck), "ignored")
        XCTAssertEqual(socket.ackJSON, [])
        try socket.ack(Message(withAck), "first", 1)
        try socket.ack(Message(withAck), "second")
        XCTAssertEqual(String(decoding: socket.ackJSON, as: UTF8.self), #"["first",1]"#)
    }

    func testSendingWithoutALoadedPluginThrowsInsteadOfCrashing() {
        let socket = RemoteSocket(id: "abc", namespace: "/")
        XCTAssertThrowsError(try socket.send("x"))
        XCTAssertThrowsError(try socket.emit("e", 1))
    }
}

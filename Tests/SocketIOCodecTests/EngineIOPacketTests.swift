import NIOCore
import SocketIOCodec
import XCTest

final class EngineIOPacketTests: XCTestCase {
    func testDecodesEachTextType() throws {
        let cases: [(String, EngineIOPacket.Kind, String)] = [
            ("0{\"sid\":\"x\"}", .open, "{\"sid\":\"x\"}"), ("1", .close, ""), ("2", .ping, ""), ("2probe", .ping, "probe"),
            ("3probe", .pong, "probe"), ("4hello", .message, "hello"), ("5", .upgrade, ""), ("6", .noop, ""),
        ]
        for (text, kind, payload) in cases {
            let packet = try EngineIOPacket.decodeText(ByteBuffer(string: text))
            XCTAssertEqual(packet.kind, kind, text)
            XCTAssertEqual(String(buffer: packet.payload), payload, text)
            var out = ByteBuffer()
            packet.writeText(into: &out)
            XCTAssertEqual(String(buffer: out), text)
        }
    }

    func testRejectsUnknownAndEmpty() {
        XCTAssertThrowsError(try EngineIOPacket.decodeText(ByteBuffer())) { XCTAssertEqual($0 as? CodecError, .emptyPacket) }
        for text in ["7", "9", "a", "/", "\u{1e}"] {
            XCTAssertThrowsError(try EngineIOPacket.decodeText(ByteBuffer(string: text))) {
                XCTAssertEqual($0 as? CodecError, .unknownPacketType)
            }
        }
    }

    func testPollingPayloadWithBinary() throws {
        // The example of the Engine.IO v4 specification.
        let body = ByteBuffer(string: "4hello\u{1e}bAQIDBA==")
        let packets = try PollingPayload.decode(body)
        XCTAssertEqual(packets.count, 2)
        XCTAssertEqual(packets[0], .message("hello"))
        XCTAssertTrue(packets[1].isBinary)
        XCTAssertEqual(Array(packets[1].payload.readableBytesView), [1, 2, 3, 4])
        var out = ByteBuffer()
        PollingPayload.encode(packets, into: &out)
        XCTAssertEqual(String(buffer: out), "4hello\u{1e}bAQIDBA==")
    }

    func testBase64PaddingVariants() throws {
        for length in 0..<20 {
            let bytes = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37) })
            var out = ByteBuffer()
            PollingPayload.encode([.binary(bytes)], into: &out)
            let back = try PollingPayload.decode(out)
            XCTAssertEqual(back, [.binary(bytes)])
        }
    }

    func testRejectsBadPayloads() {
        for text in ["", "4a\u{1e}", "\u{1e}4a", "b===", "bA", "b!!!!", "bAAAA=AAA", "4a\u{1e}x"] {
            XCTAssertThrowsError(try PollingPayload.decode(ByteBuffer(string: text)), text.debugDescription)
        }
    }
}

import NIOCore
import SocketIOCodec
import XCTest

final class SocketIOPacketTests: XCTestCase {
    /// The examples of the Socket.IO v5 specification, decoded and re-encoded byte for byte.
    func testSpecificationExamples() throws {
        let examples: [(String, SocketIOPacket)] = [
            ("0", .init(kind: .connect)),
            ("0/admin,{\"token\":\"123\"}", .init(kind: .connect, namespace: "/admin", data: ["token": "123"])),
            ("0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", .init(kind: .connect, data: ["sid": "oSO0OpakMV_3jnilAAAA"])),
            ("4{\"message\":\"Not authorized\"}", .init(kind: .connectError, data: ["message": "Not authorized"])),
            ("1/admin,", .init(kind: .disconnect, namespace: "/admin")),
            ("2[\"foo\"]", .init(kind: .event, data: ["foo"])),
            ("2/admin,[\"bar\"]", .init(kind: .event, namespace: "/admin", data: ["bar"])),
            ("212[\"foo\"]", .init(kind: .event, ackID: 12, data: ["foo"])),
            ("3/admin,13[\"bar\"]", .init(kind: .ack, namespace: "/admin", ackID: 13, data: ["bar"])),
            ("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
             .init(kind: .binaryEvent, data: ["baz", ["_placeholder": true, "num": 0]], attachmentCount: 1)),
            ("61-/admin,15[{\"_placeholder\":true,\"num\":0}]",
             .init(kind: .binaryAck, namespace: "/admin", ackID: 15, data: [["_placeholder": true, "num": 0]], attachmentCount: 1)),
        ]
        for (text, expected) in examples {
            let packet = try SocketIOPacket.decode(ByteBuffer(string: text))
            XCTAssertEqual(packet, expected, text)
            XCTAssertEqual(String(buffer: packet.encoded()), text)
        }
    }

    func testEventAccessors() throws {
        let packet = try SocketIOPacket.decode(ByteBuffer(string: "2/chat,7[\"say\",1,{\"a\":2}]"))
        XCTAssertEqual(packet.eventName, "say")
        XCTAssertEqual(packet.arguments, [1, ["a": 2]])
        XCTAssertEqual(packet.ackID, 7)
        XCTAssertEqual(packet.namespace, "/chat")
    }

    func testRejectsMalformedPackets() {
        let invalid: [(String, CodecError)] = [
            ("", .emptyPacket), ("7", .unknownPacketType), ("x", .unknownPacketType),
            ("2", .invalidPayload), ("2{}", .invalidPayload), ("2[]", .invalidPayload), ("2[1]", .invalidPayload),
            ("3[]", .invalidAckID), ("31{}", .invalidPayload), ("1{\"a\":1}", .invalidPayload), ("0[]", .invalidPayload),
            ("5[\"a\"]", .invalidAttachmentCount), ("5-[\"a\"]", .invalidAttachmentCount), ("51[\"a\"]", .invalidAttachmentCount),
            ("599999-[\"a\"]", .invalidAttachmentCount), ("212345678901234567[\"a\"]", .invalidAckID),
            ("2[\"a\"", .invalidJSON), ("2/admin,", .invalidPayload), ("4", .invalidPayload),
        ]
        for (text, error) in invalid {
            XCTAssertThrowsError(try SocketIOPacket.decode(ByteBuffer(string: text)), text) {
                XCTAssertEqual($0 as? CodecError, error, text)
            }
        }
    }

    func testAssemblerCollectsAttachmentsInOrder() throws {
        var assembler = BinaryPacketAssembler()
        guard case .needMore = try assembler.receiveText(ByteBuffer(string: "52-[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")) else {
            return XCTFail("expected to wait for attachments")
        }
        XCTAssertTrue(assembler.isCollecting)
        XCTAssertThrowsError(try assembler.receiveText(ByteBuffer(string: "2[\"x\"]")))
        guard case .needMore = try assembler.receiveBinary(ByteBuffer(bytes: [1])) else { return XCTFail() }
        guard case .packet(let packet, let attachments) = try assembler.receiveBinary(ByteBuffer(bytes: [2, 3])) else {
            return XCTFail("expected a packet")
        }
        XCTAssertEqual(packet.eventName, "up")
        XCTAssertEqual(attachments.map { Array($0.readableBytesView) }, [[1], [2, 3]])
        XCTAssertFalse(assembler.isCollecting)
    }

    func testAssemblerRefusesUnexpectedBinary() {
        var assembler = BinaryPacketAssembler()
        XCTAssertThrowsError(try assembler.receiveBinary(ByteBuffer(bytes: [1]))) {
            XCTAssertEqual($0 as? CodecError, .unexpectedAttachment)
        }
    }

    func testBinaryEventWithoutAttachmentsIsDeliveredAtOnce() throws {
        var assembler = BinaryPacketAssembler()
        guard case .packet(let packet, let attachments) = try assembler.receiveText(ByteBuffer(string: "50-[\"a\"]")) else {
            return XCTFail()
        }
        XCTAssertEqual(packet.kind, .binaryEvent)
        XCTAssertTrue(attachments.isEmpty)
    }

    /// socket.io-parser's "illegal attachments": a placeholder must name an attachment that came.
    func testPlaceholdersMustNameAnAttachment() throws {
        func assemble(_ text: String, attachments: Int) throws {
            var assembler = BinaryPacketAssembler()
            _ = try assembler.receiveText(ByteBuffer(string: text))
            for _ in 0..<attachments { _ = try assembler.receiveBinary(ByteBuffer(bytes: [7])) }
        }
        for num in ["5", "1", "-1", "1e300", "\"0\"", "0.5", "null"] {
            XCTAssertThrowsError(try assemble("51-[\"message\",{\"_placeholder\":true,\"num\":\(num)}]", attachments: 1), num) {
                XCTAssertEqual($0 as? CodecError, .illegalAttachments)
            }
        }
        XCTAssertThrowsError(try assemble("51-[\"m\",{\"_placeholder\":true}]", attachments: 1))
        // Placeholders in a packet that declares no attachments, nested or not.
        for text in ["2[\"m\",{\"_placeholder\":true,\"num\":0}]", "50-[\"m\",{\"_placeholder\":true,\"num\":0}]",
                     "2[\"m\",[1,{\"a\":{\"_placeholder\":true,\"num\":0}}]]", "31[{\"_placeholder\":true,\"num\":0}]"] {
            XCTAssertThrowsError(try assemble(text, attachments: 0), text) {
                XCTAssertEqual($0 as? CodecError, .illegalAttachments)
            }
        }
        // Valid ones, and objects that only look alike.
        XCTAssertNoThrow(try assemble("52-[\"m\",{\"x\":[{\"_placeholder\":true,\"num\":1}]},{\"_placeholder\":true,\"num\":0}]", attachments: 2))
        XCTAssertNoThrow(try assemble("2[\"m\",{\"_placeholder\":false,\"num\":9},\"_placeholder\"]", attachments: 0))
    }
}

import NIOCore
import XCTest

@testable import SocketIOCodec

final class WebSocketFrameParserTests: XCTestCase {
    /// A client frame: masked with `key`, length in the shortest form unless `longForm`.
    private func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D],
                       masked: Bool = true, rsv: UInt8 = 0, longForm: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
        let mask: UInt8 = masked ? 0x80 : 0
        if longForm {
            bytes.append(mask | 127)
            bytes += withUnsafeBytes(of: UInt64(payload.count).bigEndian, Array.init)
        } else if payload.count < 126 {
            bytes.append(mask | UInt8(payload.count))
        } else if payload.count <= 65535 {
            bytes.append(mask | 126)
            bytes += withUnsafeBytes(of: UInt16(payload.count).bigEndian, Array.init)
        } else {
            bytes.append(mask | 127)
            bytes += withUnsafeBytes(of: UInt64(payload.count).bigEndian, Array.init)
        }
        guard masked else { return bytes + payload }
        return bytes + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }

    private func outputs(_ bytes: [UInt8], max: Int = 1_000_000, chunk: Int? = nil) -> [WebSocketFrameParser.Output] {
        var parser = WebSocketFrameParser(maxMessageSize: max)
        var result: [WebSocketFrameParser.Output] = []
        let size = chunk ?? Swift.max(bytes.count, 1)
        var offset = 0
        repeat {
            var piece = ByteBuffer(bytes: bytes[offset..<min(offset + size, bytes.count)])
            parser.append(&piece)
            while let output = parser.next() { result.append(output) }
            offset += size
        } while offset < bytes.count
        return result
    }

    private func text(_ string: String) -> WebSocketFrameParser.Output { .text(ByteBuffer(string: string)) }

    func testUnmasksEveryLengthAndSplitPoint() {
        for length in [0, 1, 3, 7, 8, 9, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70000] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let bytes = frame(0x2, payload)
            XCTAssertEqual(outputs(bytes), [.binary(ByteBuffer(bytes: payload))], "length \(length)")
            if length < 200 {
                XCTAssertEqual(outputs(bytes, chunk: 1), [.binary(ByteBuffer(bytes: payload))], "byte by byte, length \(length)")
            }
        }
        XCTAssertEqual(outputs(frame(0x1, Array("4hi".utf8), longForm: true)), [text("4hi")], "64-bit length form")
    }

    func testSeveralFramesInOneRead() {
        let bytes = frame(0x1, Array("42[1]".utf8)) + frame(0x9, Array("p".utf8)) + frame(0x1, Array("3".utf8))
        XCTAssertEqual(outputs(bytes), [text("42[1]"), .ping(ByteBuffer(string: "p")), text("3")])
        XCTAssertEqual(outputs(bytes, chunk: 3), [text("42[1]"), .ping(ByteBuffer(string: "p")), text("3")])
    }

    func testFragmentsJoinAroundControlFrames() {
        let bytes = frame(0x1, Array("4he".utf8), fin: false) + frame(0x9, [])
            + frame(0x0, Array("ll".utf8), fin: false) + frame(0xA, []) + frame(0x0, Array("o".utf8))
        XCTAssertEqual(outputs(bytes), [.ping(ByteBuffer()), .pong, text("4hello")])
        XCTAssertEqual(outputs(bytes, chunk: 2), [.ping(ByteBuffer()), .pong, text("4hello")])
    }

    func testClose() {
        XCTAssertEqual(outputs(frame(0x8, [0x03, 0xE8])), [.close(code: 1000)])
        XCTAssertEqual(outputs(frame(0x8, [])), [.close(code: nil)])
        XCTAssertEqual(outputs(frame(0x8, [0x03])), [.fail(code: 1002)])
    }

    func testProtocolErrors() {
        let cases: [(String, [UInt8])] = [
            ("unmasked", frame(0x1, Array("4".utf8), masked: false)),
            ("reserved bit", frame(0x1, Array("4".utf8), rsv: 0x40)),
            ("unknown opcode", frame(0x3, [])),
            ("continuation without a start", frame(0x0, Array("x".utf8))),
            ("new message inside a fragmented one", frame(0x1, [1], fin: false) + frame(0x2, [2])),
            ("fragmented control frame", frame(0x9, [], fin: false)),
            ("control frame over 125 bytes", frame(0x9, Array(repeating: 0, count: 126))),
            ("64-bit length with the top bit set", [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]),
        ]
        for (name, bytes) in cases {
            XCTAssertEqual(outputs(bytes), [.fail(code: 1002)], name)
        }
    }

    func testOversizeMessagesFailBeforeTheirPayloadArrives() {
        // Only the header of a 2,000-byte frame: refused at once.
        XCTAssertEqual(outputs(Array(frame(0x1, Array(repeating: 0x61, count: 2000)).prefix(8)), max: 1000), [.fail(code: 1009)])
        XCTAssertEqual(outputs(frame(0x1, Array(repeating: 0x61, count: 1000)), max: 1000).count, 1, "exactly the limit is fine")
        let fragmented = frame(0x1, Array(repeating: 0x61, count: 600), fin: false) + frame(0x0, Array(repeating: 0x62, count: 600))
        XCTAssertEqual(outputs(fragmented, max: 1000), [.fail(code: 1009)])
        XCTAssertEqual(outputs([0x81, 0xFF] + withUnsafeBytes(of: UInt64(1 << 40).bigEndian, Array.init), max: 1000), [.fail(code: 1009)])
    }

    func testNothingFollowsAFailure() {
        var parser = WebSocketFrameParser(maxMessageSize: 100)
        var bytes = ByteBuffer(bytes: frame(0x3, []) + frame(0x1, Array("4".utf8)))
        parser.append(&bytes)
        XCTAssertEqual(parser.next(), .fail(code: 1002))
        XCTAssertNil(parser.next())
        var more = ByteBuffer(bytes: frame(0x1, Array("4".utf8)))
        parser.append(&more)
        XCTAssertNil(parser.next())
    }

    func testRandomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = outputs(bytes, max: 100, chunk: Int.random(in: 1...8, using: &generator))
        }
    }
}

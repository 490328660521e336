import NIOCore
import SocketIOServer
import XCTest

@testable import SioCluster

final class ClusterWireTests: XCTestCase {
    private let samples: [WireMessage] = [
        .message(.broadcast(namespace: "/", channels: ["room", "é:12"], excluding: "abc", packet: ByteBuffer(string: #"2["message","x"]"#),
                            attachments: [], id: 0)),
        .message(.broadcast(namespace: "/chat", channels: [], excluding: nil, packet: ByteBuffer(string: "5-[]"),
                            attachments: [ByteBuffer(bytes: [0, 1, 255]), ByteBuffer()], id: UInt64.max)),
        .message(.toSocket(namespace: "/", socket: "s1", packet: ByteBuffer(string: "2[]"), attachments: [], id: 1 << 60)),
        .message(.recoveryClaim(namespace: "/", socket: "s1", pid: "p1", offset: "~abc")),
        .message(.recoveryClaim(namespace: "/", socket: "s1", pid: "p1", offset: "")),
        .message(.recoveryAnswer(pid: "p1", nil)),
        .message(.recoveryAnswer(pid: "p1", RecoveredSocket(
            channels: ["a", "b"], value: "ann",
            missed: [.init(packet: ByteBuffer(string: #"2["message","x"]"#), attachments: [], tag: MessageTag(node: "n1", id: 7)),
                     .init(packet: ByteBuffer(string: "5-[]"), attachments: [ByteBuffer(bytes: [1])], tag: MessageTag(node: "n2", id: 3))],
            seen: [MessageTag(node: "n1", id: 5), MessageTag(node: "n1", id: 7), MessageTag(node: "n2", id: 3)]))),
        .message(.recoveryAnswer(pid: "p1", RecoveredSocket(channels: [], value: nil, missed: [], seen: []))),
        .direct(node: "n2", .message(.recoveryAnswer(pid: "p1", nil))),
        .presence(.away(namespace: "/", socket: "s1", pid: "p1")),
        .presence(.away(namespace: "/", socket: "s1", pid: nil)),
        .message(.operation(namespace: "/", socket: "s1", .join("a:b"))),
        .message(.operation(namespace: "/", socket: "s1", .leave("a"))),
        .message(.operation(namespace: "/", socket: "s1", .disconnect)),
        .presence(.connected(namespace: "/", socket: "s1")),
        .presence(.disconnected(namespace: "/", socket: "s1")),
        .presence(.joined(namespace: "/", socket: "s1", channel: "c")),
        .presence(.left(namespace: "/", socket: "s1", channel: "c")),
        .presence(.value(namespace: "/", socket: "s1", "ann")),
        .presence(.value(namespace: "/", socket: "s1", "")),
        .presence(.value(namespace: "/", socket: "s1", nil)),
        .presence(.value(namespace: "/", socket: "s1", "-")),
        .heartbeat, .hello, .snapshotRequest(node: "n2"), .snapshotBegin, .bye, .reference(123_456_789),
        .snapshot(NamespaceMembers(namespace: "/", members: [
            .init(id: "a", channels: ["x", "y"], value: "v"), .init(id: "b", channels: [], value: nil, pid: "p"),
        ])),
    ]

    func testEveryMessageRoundTripsAloneAndInOneBatch() throws {
        var batch = ByteBuffer()
        for message in samples {
            var one = ByteBuffer()
            ClusterWire.encode(message, into: &one)
            XCTAssertEqual(try ClusterWire.decode(one), [message])
            ClusterWire.encode(message, into: &batch)
        }
        XCTAssertEqual(try ClusterWire.decode(batch), samples)
    }

    func testANotificationNamesItsNode() throws {
        var payload = ByteBuffer(string: "node-1 42\n")
        ClusterWire.encode(.heartbeat, into: &payload)
        ClusterWire.encode(.presence(.connected(namespace: "/", socket: "s")), into: &payload)
        let (node, sequence, messages) = try ClusterWire.decodeNotification(String(buffer: payload))
        XCTAssertEqual(node, "node-1")
        XCTAssertEqual(sequence, 42)
        XCTAssertEqual(messages, [.heartbeat, .presence(.connected(namespace: "/", socket: "s"))])
        for broken in ["H", "\nH", "node\nH", "node x\nH", " 1\nH", "node 1 2\nH"] {
            XCTAssertThrowsError(try ClusterWire.decodeNotification(broken), broken)
        }
    }

    func testBrokenBatchesAreErrorsNotTraps() {
        var valid = ByteBuffer()
        ClusterWire.encode(samples[0], into: &valid)
        let bytes = Array(valid.readableBytesView)
        // Every truncation of a valid message fails cleanly.
        for length in 1..<bytes.count {
            XCTAssertThrowsError(try ClusterWire.decode(ByteBuffer(bytes: bytes[0..<length])), "length \(length)")
        }
        for broken in ["?", "C", "C3:abc", "C99999999999:", "Cx:", "C:a", "C1:/", "B1:/99999:", "N1:/5:", "O1:/1:s1:x0:",
                       "O1:/1:s1:j0:", "R:", "R12345678901:", "V1:/1:s",
                       // An id past 64 bits, an answer neither refused nor given, a direct message
                       // that is not a server's, one direct inside another.
                       "T1:/2:s11:20:0:99999999999999999999:", "W2:p1?", "@2:n1H", "@2:n1@2:n1W2:p1-",
                       "W2:p1+0:-1:1:x0:2:n1", "A1:/2:s1"] {
            XCTAssertThrowsError(try ClusterWire.decode(ByteBuffer(string: broken)), broken)
        }
        // Invalid UTF-8 in a text field.
        XCTAssertThrowsError(try ClusterWire.decode(ByteBuffer(bytes: Array("C1:/2:".utf8) + [0xC3, 0x28])))
    }

    func testRandomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("BTOCDJLVHSQZNXRKWA@+0123456789:-/".utf8)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<24, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            _ = try? ClusterWire.decode(ByteBuffer(bytes: bytes))
        }
    }

    func testOnlyBinaryAttachmentsMakeAMessageNonText() {
        XCTAssertTrue(samples[0].isText)
        XCTAssertFalse(samples[1].isText)
        XCTAssertTrue(WireMessage.heartbeat.isText)
        let binaryAnswer = samples.first {
            if case .message(.recoveryAnswer(_, let state?)) = $0 { return state.missed.contains { !$0.attachments.isEmpty } }
            return false
        }!
        XCTAssertFalse(binaryAnswer.isText)
        XCTAssertFalse(WireMessage.direct(node: "n", binaryAnswer).isText)
        XCTAssertTrue(WireMessage.direct(node: "n", .message(.recoveryAnswer(pid: "p", nil))).isText)
    }
}

import CoreMetrics
import MetricsTestKit
import NIOCore
import NIOEmbedded
@testable import SocketIOServer
import XCTest

/// What the server counts, through a real pipeline, into swift-metrics' test backend.
final class MetricsTests: XCTestCase {
    private var loop: EmbeddedEventLoop!

    override func setUp() {
        loop = EmbeddedEventLoop()
    }

    override func tearDown() {
        try? loop.syncShutdownGracefully()
    }

    private func total(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        (try? metrics.expectCounter(label, dimensions).totalValue) ?? 0
    }

    func testPacketsBytesAndMessagesAreCountedOnTheLoopAndReportedWhenFolded() throws {
        let metrics = TestMetrics()
        let (context, application) = makeContext(metrics: metrics)
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        try connection.sendFrame("40")
        try connection.sendFrame(#"421["__subscribe__","room"]"#)
        try connection.sendFrame(#"42["chat",1]"#)
        try connection.sendFrame(#"422["chat",2]"#)
        let written = try connection.received().count
        XCTAssertEqual(application.recorded, ["connect /", "subscribe room", "message chat [1]", "message chat [2]"])
        XCTAssertEqual(total(metrics, "sio_handshakes_total", [("transport", "websocket")]), 1)

        // Nothing per packet reaches the backend until the loop folds its counters in.
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "message")]), 0)
        let serverMetrics = try XCTUnwrap(context.metrics)
        serverMetrics.counters(for: loop).fold(into: serverMetrics)
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "connect")]), 1)
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "subscribe")]), 1)
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "message")]), 2)
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "ack")]), 0)
        // The subscription's ack and the message's ack: two messages to one socket.
        XCTAssertEqual(total(metrics, "sio_messages_sent_total", [("to", "one")]), 2)
        XCTAssertEqual(total(metrics, "sio_deliveries_total"), 2)
        // Four masked frames, each a 2-byte head and a 4-byte mask before its payload.
        let payloads = ["40", #"421["__subscribe__","room"]"#, #"42["chat",1]"#, #"422["chat",2]"#].map(\.utf8.count)
        XCTAssertEqual(total(metrics, "sio_received_bytes_total"), Int64(payloads.reduce(4 * 6, +)))
        XCTAssertGreaterThan(total(metrics, "sio_sent_bytes_total"), 0)
        XCTAssertLessThan(total(metrics, "sio_sent_bytes_total"), Int64(written))

        // A second fold adds only what came since.
        try connection.sendFrame(#"42["chat",3]"#)
        serverMetrics.counters(for: loop).fold(into: serverMetrics)
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "message")]), 3)
    }

    func testABroadcastCountsOnceWithItsRecipientsAndDisconnectsByReason() throws {
        let metrics = TestMetrics()
        let (context, _) = makeContext(metrics: metrics)
        var connections: [Connection] = []
        for _ in 0..<3 {
            let connection = try Connection(context: context, loop: loop)
            try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
            try connection.sendFrame("40")
            try connection.sendFrame(#"42["__subscribe__","room"]"#)
            _ = try connection.received()
            connections.append(connection)
        }
        let sender = try XCTUnwrap(context.namespaces["/"]?.allSockets.first)
        XCTAssertEqual(context.emit(event: "message", ["hi"], channels: ["room"], excluding: sender.id), 2)
        loop.run()
        XCTAssertEqual(total(metrics, "sio_messages_sent_total", [("to", "many")]), 1, "counted as it is sent, once")
        XCTAssertEqual(total(metrics, "sio_deliveries_total"), 2)
        for connection in connections[1...] {
            XCTAssertTrue(textFrames(try connection.received()).contains(#"42["message","hi"]"#))
        }

        try connections[0].sendFrame("41")
        context.metrics!.counters(for: loop).fold(into: context.metrics!)
        XCTAssertEqual(total(metrics, "sio_disconnects_total", [("reason", "client namespace disconnect")]), 1)
        XCTAssertEqual(total(metrics, "sio_packets_received_total", [("kind", "disconnect")]), 1)
        XCTAssertEqual(total(metrics, "sio_handshakes_total", [("transport", "websocket")]), 3)
    }

    func testMetricsOffCountsNothing() throws {
        let (context, _) = makeContext()
        XCTAssertNil(context.metrics)
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        try connection.sendFrame("40")
        XCTAssertFalse(try connection.received().isEmpty)
    }
}

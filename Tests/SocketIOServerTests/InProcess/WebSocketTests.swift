import NIOCore
import NIOEmbedded
@testable import SocketIOServer
import XCTest

/// The upgrade and the WebSocket transport, in process.
final class WebSocketTests: XCTestCase {
    private var loop: EmbeddedEventLoop!

    override func setUp() {
        loop = EmbeddedEventLoop()
    }

    override func tearDown() {
        try? loop.syncShutdownGracefully()
    }

    /// Splits what the server wrote into the 101 head and the frames after it.
    private func upgraded(_ bytes: [UInt8]) throws -> (head: String, frames: [String]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let end = try XCTUnwrap(text.range(of: "\r\n\r\n"))
        let headLength = text.utf8.distance(from: text.startIndex, to: end.upperBound)
        return (String(text[..<end.lowerBound]), textFrames(Array(bytes[headLength...])))
    }

    func testADirectWebSocketGetsTheOpenPacketInTheSameWriteAsThe101() throws {
        let (context, application) = makeContext()
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        let (head, frames) = try upgraded(try connection.received())
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        XCTAssertTrue(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455's example accept key")
        XCTAssertEqual(frames.count, 1)
        XCTAssertTrue(frames[0].hasPrefix(#"0{"sid":""#))
        XCTAssertTrue(frames[0].contains(#""upgrades":[]"#))

        try connection.sendFrame("40")
        loop.run()
        XCTAssertTrue(textFrames(try connection.received()).first?.hasPrefix(#"40{"sid":""#) ?? false)
        try connection.sendFrame(#"42["chat",1]"#)
        XCTAssertEqual(application.recorded, ["connect /", "message chat [1]"])
    }

    func testWhatConnectEmitsFollowsTheAcknowledgementInAWriteOfItsOwn() throws {
        let (context, application) = makeContext(greeting: "auth")
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        _ = try connection.received()
        try connection.sendFrame(#"40{"token":"123"}"#)
        let acknowledgement = textFrames(try connection.received())
        XCTAssertEqual(acknowledgement.count, 1, "the CONNECT acknowledgement goes out alone")
        XCTAssertTrue(acknowledgement[0].hasPrefix(#"40{"sid":""#))

        // Sent while the event waits: it queues behind it, in order.
        application.sockets.withLockedValue { $0[0] }.emit("second", [])
        loop.run()
        XCTAssertEqual(try connection.received(), [])
        loop.advanceTime(by: Socket.acknowledgementGap)
        XCTAssertEqual(textFrames(try connection.received()), [#"42["auth",{"token":"123"}]"#, #"42["second"]"#])

        application.sockets.withLockedValue { $0[0] }.emit("third", [])
        loop.run()
        XCTAssertEqual(textFrames(try connection.received()), [#"42["third"]"#], "connected: straight through")
    }

    func testAWebSocketPingIsAnsweredAndAMissingPongClosesWithoutAClosePacket() throws {
        let (context, application) = makeContext {
            $0.pingInterval = 1_000
            $0.pingTimeout = 500
        }
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        _ = try connection.received()
        try connection.sendFrame("40")
        _ = try connection.received()
        try connection.sendFrame("ping", opcode: 0x9)
        XCTAssertEqual(textFrames(try connection.received()), ["ping"], "a pong frame echoes the ping's payload")

        loop.advanceTime(by: .milliseconds(1_000))
        XCTAssertEqual(textFrames(try connection.received()), ["2"])
        try connection.sendFrame("3")
        loop.advanceTime(by: .milliseconds(1_000))
        XCTAssertEqual(textFrames(try connection.received()), ["2"])
        loop.advanceTime(by: .milliseconds(500))
        XCTAssertEqual(application.recorded, ["connect /", "disconnect ping timeout", "finish"])
        XCTAssertFalse(connection.channel.isActive)
    }

    func testTheUpgradeOfAPollingSession() throws {
        let (context, application) = makeContext()
        let polling = try Connection(context: context, loop: loop)
        try polling.get("EIO=4&transport=polling")
        let sid = try XCTUnwrap(try polling.responses().first?.body.openSID)
        try polling.post("EIO=4&transport=polling&sid=\(sid)", body: "40")
        try polling.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try polling.responses().count, 2)
        try polling.get("EIO=4&transport=polling&sid=\(sid)")  // parked

        let webSocket = try Connection(context: context, loop: loop)
        try webSocket.get("EIO=4&transport=websocket&sid=\(sid)", headers: upgradeHeaders)
        let (head, frames) = try upgraded(try webSocket.received())
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"))
        XCTAssertEqual(frames, [], "a probe waits for the client")
        try webSocket.sendFrame("2probe")
        XCTAssertEqual(textFrames(try webSocket.received()), ["3probe"])
        XCTAssertEqual(try polling.responses().map(\.body), ["6"], "the parked GET returns so that the client can upgrade")

        application.sockets.withLockedValue { $0[0] }.emit("during", [])
        loop.run()
        try webSocket.sendFrame("5")
        XCTAssertEqual(textFrames(try webSocket.received()), [#"42["during"]"#], "what was queued goes out on the WebSocket")
        try polling.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try polling.responses().map(\.status), [400], "no polling after the upgrade")

        application.sockets.withLockedValue { $0[0] }.emit("after", [])
        loop.run()
        XCTAssertEqual(textFrames(try webSocket.received()), [#"42["after"]"#])

        let late = try Connection(context: context, loop: loop)
        try late.get("EIO=4&transport=websocket&sid=\(sid)", headers: upgradeHeaders)
        loop.run()
        XCTAssertFalse(late.channel.isActive, "a second WebSocket for an upgraded session is closed")
        XCTAssertTrue(webSocket.channel.isActive)
    }

    /// With a greeting, the disconnect comes while the greeting waits behind the CONNECT
    /// acknowledgement: it is never sent.
    func testAServerDisconnectSendsTheCloseFrameAfterTheDisconnect() throws {
        for greeting in [nil, "auth"] {
            let (context, application) = makeContext(greeting: greeting)
            let connection = try Connection(context: context, loop: loop)
            try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
            try connection.sendFrame("40")
            _ = try connection.received()
            application.sockets.withLockedValue { $0[0] }.disconnect()
            loop.run()
            loop.advanceTime(by: Socket.acknowledgementGap)
            XCTAssertEqual(textFrames(try connection.received()), ["41", "1"])
            XCTAssertFalse(connection.channel.isActive)
            XCTAssertEqual(application.recorded, ["connect /", "disconnect server namespace disconnect", "finish"])
        }
    }

    func testAnInvalidPacketClosesTheSessionAsAParseError() throws {
        let (context, application) = makeContext()
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        try connection.sendFrame("40")
        try connection.sendFrame("4{")
        XCTAssertEqual(application.recorded, ["connect /", "error invalid packet: unknown packet type", "disconnect parse error", "finish"])
    }

    func testAForeignOriginIsRefusedBeforeTheUpgrade() throws {
        let (context, _) = makeContext()
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders + ["Origin: http://evil.example"])
        XCTAssertEqual(try connection.responses().map(\.status), [403])
    }
}

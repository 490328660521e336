import NIOCore
import NIOEmbedded
@testable import SocketIOServer
import XCTest

/// The HTTP handler and the session over long-polling, in process: the real pipeline on an
/// `EmbeddedChannel`, time moved by the test.
final class PollingTests: XCTestCase {
    private var loop: EmbeddedEventLoop!

    override func setUp() {
        loop = EmbeddedEventLoop()
    }

    override func tearDown() {
        try? loop.syncShutdownGracefully()
    }

    /// Handshake and CONNECT to `/`; returns the connection and the sid.
    private func connected(_ context: ServerContext) throws -> (Connection, String) {
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=polling")
        let open = try connection.responses()
        XCTAssertEqual(open.first?.status, 200)
        let sid = try XCTUnwrap(open.first?.body.openSID)
        XCTAssertTrue(open[0].body.hasPrefix(#"0{"sid":""#))
        XCTAssertTrue(open[0].body.contains(#""upgrades":["websocket"]"#))
        try connection.post("EIO=4&transport=polling&sid=\(sid)", body: "40")
        XCTAssertEqual(try connection.responses().map(\.body), ["ok"])
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        let connect = try connection.responses()
        XCTAssertTrue(connect.first?.body.hasPrefix(#"40{"sid":""#) ?? false, "\(connect)")
        return (connection, sid)
    }

    func testHandshakeConnectAndAnEventWithAnAck() throws {
        let (context, application) = makeContext()
        let (connection, sid) = try connected(context)
        try connection.post("EIO=4&transport=polling&sid=\(sid)", body: #"421["chat","hi"]"#)
        XCTAssertEqual(try connection.responses().map(\.body), ["ok"])
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try connection.responses().map(\.body), [#"431["hi"]"#])
        XCTAssertEqual(application.recorded, ["connect /", #"message chat ["hi"]"#])
    }

    func testAParkedGetIsAnsweredByAnEmitAndASecondGetClosesTheSession() throws {
        let (context, application) = makeContext()
        let (connection, sid) = try connected(context)
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertTrue(try connection.responses().isEmpty, "parked")
        application.sockets.withLockedValue { $0[0] }.emit("news", ["x"])
        loop.run()
        XCTAssertEqual(try connection.responses().map(\.body), [#"42["news","x"]"#])

        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        let second = try Connection(context: context, loop: loop)
        try second.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try second.responses().map(\.status), [400], "overlapping GET")
        XCTAssertEqual(try connection.responses().map(\.body), ["1"], "the parked GET gets the close packet")
        XCTAssertEqual(application.recorded.suffix(2), ["disconnect transport error", "finish"])
        try second.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try second.responses().map(\.body), [#"{"code":1,"message":"Session ID unknown"}"#])
    }

    func testAnOversizeBodyIsRefusedBeforeItArrives() throws {
        let (context, _) = makeContext { $0.maxPayload = 100 }
        let (connection, sid) = try connected(context)
        try connection.send("POST /socket.io/?EIO=4&transport=polling&sid=\(sid) HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        // (NIO's protocol error handler then answers the cut request with a 400, which a real
        // socket, closed by then, never sends.)
        XCTAssertEqual(try connection.responses().first?.status, 413)
        XCTAssertFalse(connection.channel.isActive, "closed after the refusal")
    }

    func testAChunkedBodyPastTheLimitIsRefusedAsItArrives() throws {
        let (context, _) = makeContext { $0.maxPayload = 100 }
        let (connection, sid) = try connected(context)
        try connection.send("POST /socket.io/?EIO=4&transport=polling&sid=\(sid) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try connection.send("40\r\n" + String(repeating: "a", count: 64) + "\r\n")
        XCTAssertTrue(try connection.responses().isEmpty, "within the limit so far")
        try connection.send("40\r\n" + String(repeating: "a", count: 64) + "\r\n")
        XCTAssertEqual(try connection.responses().first?.status, 413)
        XCTAssertFalse(connection.channel.isActive)
    }

    func testPingsComeEveryIntervalAndAMissingPongClosesTheSession() throws {
        let (context, application) = makeContext {
            $0.pingInterval = 25_000
            $0.pingTimeout = 20_000
        }
        let (connection, sid) = try connected(context)
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        loop.advanceTime(by: .milliseconds(24_999))
        XCTAssertTrue(try connection.responses().isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(try connection.responses().map(\.body), ["2"])

        // A pong in time: the next ping comes an interval later, and nothing closes.
        try connection.post("EIO=4&transport=polling&sid=\(sid)", body: "3")
        XCTAssertEqual(try connection.responses().map(\.body), ["ok"])
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        loop.advanceTime(by: .milliseconds(20_000))
        XCTAssertEqual(application.recorded, ["connect /"])
        loop.advanceTime(by: .milliseconds(5_000))
        XCTAssertEqual(try connection.responses().map(\.body), ["2"])

        // No pong: closed when the timeout runs out.
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        loop.advanceTime(by: .milliseconds(19_999))
        XCTAssertEqual(application.recorded, ["connect /"])
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(application.recorded, ["connect /", "disconnect ping timeout", "finish"])
        XCTAssertEqual(try connection.responses().map(\.body), ["1"])
    }

    func testNoConnectInTimeClosesTheSession() throws {
        let (context, _) = makeContext { $0.connectTimeout = 1_000 }
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=polling")
        let sid = try XCTUnwrap(try connection.responses().first?.body.openSID)
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        loop.advanceTime(by: .milliseconds(1_000))
        XCTAssertEqual(try connection.responses().map(\.body), ["1"])
        XCTAssertNil(context.session(sid))
    }

    func testAServerDisconnectIsReadByOneMoreGetThenTheCloseComesAlone() throws {
        let (context, application) = makeContext()
        let (connection, sid) = try connected(context)
        application.sockets.withLockedValue { $0[0] }.disconnect()
        loop.run()
        XCTAssertNotNil(context.session(sid), "draining: reachable for one more GET")
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try connection.responses().map(\.body), ["41"])
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        XCTAssertEqual(try connection.responses().map(\.body), ["1"])
        XCTAssertNil(context.session(sid))
    }

    func testADrainingSessionNobodyPollsGoesAtThePingTimeout() throws {
        let (context, application) = makeContext { $0.pingTimeout = 5_000 }
        let (_, sid) = try connected(context)
        application.sockets.withLockedValue { $0[0] }.disconnect()
        loop.run()
        loop.advanceTime(by: .milliseconds(4_999))
        XCTAssertNotNil(context.session(sid))
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertNil(context.session(sid))
    }

    func testADroppedConnectionWithAParkedGetEndsTheSession() throws {
        let (context, application) = makeContext()
        let (connection, sid) = try connected(context)
        try connection.get("EIO=4&transport=polling&sid=\(sid)")
        _ = try connection.channel.finish()
        loop.run()
        XCTAssertEqual(application.recorded.suffix(2), ["disconnect transport close", "finish"])
    }

    func testAHalfSentHeadIsClosedAtTheHeaderTimeout() throws {
        let (context, _) = makeContext { $0.headerTimeout = .seconds(10) }
        let connection = try Connection(context: context, loop: loop)
        try connection.send("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.")
        loop.advanceTime(by: .milliseconds(9_999))
        XCTAssertTrue(connection.channel.isActive)
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(connection.channel.isActive)
    }

    func testASlowPollingConsumerIsDropped() throws {
        let (context, application) = makeContext { $0.maxOutboundBytes = 1_000 }
        let (_, _) = try connected(context)
        let socket = application.sockets.withLockedValue { $0[0] }
        for _ in 0..<20 { socket.emit("x", [.string(String(repeating: "y", count: 100))]) }
        loop.run()
        XCTAssertEqual(application.recorded.suffix(2), ["disconnect slow consumer", "finish"])
    }
}

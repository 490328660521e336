import NIOCore
import NIOEmbedded
@testable import SocketIOServer
import XCTest

/// Events the application finishes later (`.later`): what the client sees while it waits, the
/// order of what it sent meanwhile, and the socket going first. Over WebSocket, in process.
final class DeferredEventTests: XCTestCase {
    private var loop: EmbeddedEventLoop!

    override func setUp() {
        loop = EmbeddedEventLoop()
    }

    override func tearDown() {
        try? loop.syncShutdownGracefully()
    }

    /// A WebSocket session past its open packet, CONNECT sent; `later` set before.
    private func open(_ later: Set<String>) throws -> (Connection, RecordingApplication, ServerContext) {
        let (context, application) = makeContext()
        application.later.withLockedValue { $0 = later }
        let connection = try Connection(context: context, loop: loop)
        try connection.get("EIO=4&transport=websocket", headers: upgradeHeaders)
        _ = try connection.received()
        try connection.sendFrame("40")
        return (connection, application, context)
    }

    private func frames(_ connection: Connection) throws -> [String] {
        loop.run()
        return textFrames(try connection.received())
    }

    private func socket(_ application: RecordingApplication) -> Socket {
        application.sockets.withLockedValue { $0[0] }
    }

    func testAConnectDecidedLaterIsAcknowledgedOnlyThenAndWhatItEmittedFollows() throws {
        let (connection, application, _) = try open(["connect"])
        XCTAssertEqual(try frames(connection), [], "no acknowledgement while the application decides")
        socket(application).emit("early", [1])
        XCTAssertEqual(try frames(connection), [])
        socket(application).completeConnect(.accept)
        let acknowledged = try frames(connection)
        XCTAssertEqual(acknowledged.count, 1)
        XCTAssertTrue(acknowledged[0].hasPrefix(#"40{"sid":""#), "\(acknowledged)")
        loop.advanceTime(by: Socket.acknowledgementGap)
        XCTAssertEqual(try frames(connection), [#"42["early",1]"#])
        socket(application).completeConnect(.refuse(message: "too late"))
        XCTAssertEqual(try frames(connection), [], "a second completion changes nothing")
    }

    func testAConnectRefusedLaterGetsConnectErrorAndOneFinish() throws {
        let (connection, application, _) = try open(["connect"])
        socket(application).completeConnect(.refuse(message: "bad token"))
        XCTAssertEqual(try frames(connection), [#"44{"message":"bad token"}"#])
        XCTAssertEqual(application.recorded, ["connect /", "finish"])
    }

    func testATransportClosedWhileTheConnectWaitsEndsInOneFinishAndALateAcceptIsNothing() throws {
        let (connection, application, _) = try open(["connect"])
        try connection.channel.close().wait()
        loop.run()
        XCTAssertEqual(application.recorded, ["connect /", "finish"], "never connected: no disconnect")
        socket(application).completeConnect(.accept)
        loop.run()
        XCTAssertEqual(application.recorded, ["connect /", "finish"])
    }

    func testEventsSentWhileAMessageWaitsAreHandledInOrderAfterIt() throws {
        let (connection, application, _) = try open(["message"])
        _ = try frames(connection)
        try connection.sendFrame(#"42["a",1]"#)
        try connection.sendFrame(#"421["b",2]"#)
        try connection.sendFrame(#"42["c",3]"#)
        XCTAssertEqual(application.recorded, ["connect /", #"message a [1]"#], "b and c wait behind a")
        socket(application).completeMessage()
        loop.run()
        XCTAssertEqual(application.recorded, ["connect /", #"message a [1]"#, #"message b [2]"#], "b waits in turn")
        XCTAssertEqual(try frames(connection), [#"431[2]"#])
        application.later.withLockedValue { $0 = [] }
        socket(application).completeMessage()
        loop.run()
        XCTAssertEqual(application.recorded.suffix(1), [#"message c [3]"#])
        try connection.sendFrame(#"42["d",4]"#)
        XCTAssertEqual(application.recorded.suffix(1), [#"message d [4]"#], "nothing waits any more: handled at once")
        XCTAssertNil(socket(application).hold)
    }

    func testASubscriptionDecidedLaterHearsNothingOfItsChannelUntilAccepted() throws {
        let (connection, application, context) = try open(["subscribe"])
        _ = try frames(connection)
        try connection.sendFrame(#"421["__subscribe__","room"]"#)
        try connection.sendFrame(#"42["after",1]"#)
        XCTAssertEqual(context.namespaces["/"]?.subscribers(of: ["room"]).count ?? 0, 0)
        XCTAssertEqual(socket(application).channels, [])
        XCTAssertEqual(application.recorded, ["connect /", "subscribe room"])
        socket(application).completeSubscribe(.accept)
        loop.run()
        XCTAssertEqual(socket(application).channels, ["room"])
        XCTAssertEqual(try frames(connection), [#"431[true]"#])
        XCTAssertEqual(application.recorded.suffix(1), [#"message after [1]"#])
    }

    func testASubscriptionRefusedLaterIsAnsweredFalseWithTheReason() throws {
        let (connection, application, _) = try open(["subscribe"])
        _ = try frames(connection)
        try connection.sendFrame(#"427["__subscribe__","room"]"#)
        socket(application).completeSubscribe(.refuse(reason: "members only"))
        XCTAssertEqual(try frames(connection), [#"437[false,"members only"]"#])
        XCTAssertEqual(socket(application).channels, [])
    }

    func testADisconnectWhileAMessageWaitsDropsWhatWasHeldAndALateCompletionIsNothing() throws {
        let (connection, application, _) = try open(["message"])
        _ = try frames(connection)
        try connection.sendFrame(#"42["a",1]"#)
        try connection.sendFrame(#"42["b",2]"#)
        try connection.sendFrame("41")
        XCTAssertEqual(application.recorded.suffix(2), ["disconnect client namespace disconnect", "finish"])
        socket(application).completeMessage()
        loop.run()
        XCTAssertFalse(application.recorded.contains(#"message b [2]"#))
    }

    func testPacketsPastTheHoldLimitAreDroppedWithOneError() throws {
        let (connection, application, _) = try open(["message"])
        _ = try frames(connection)
        try connection.sendFrame(#"42["first"]"#)
        for i in 0..<(EventHold.limit + 5) { try connection.sendFrame("42[\"n\",\(i)]") }
        XCTAssertEqual(application.recorded.filter { $0.hasPrefix("error") },
                       ["error events dropped: more than \(EventHold.limit) waited behind an event a handler has not finished"])
        application.later.withLockedValue { $0 = [] }
        socket(application).completeMessage()
        loop.run()
        let handled = application.recorded.filter { $0.hasPrefix("message n") }
        XCTAssertEqual(handled.count, EventHold.limit)
        XCTAssertEqual(handled.last, "message n [\(EventHold.limit - 1)]")
    }
}

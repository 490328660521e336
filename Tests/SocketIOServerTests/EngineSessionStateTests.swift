import NIOCore
@testable import SocketIOCodec
@testable import SocketIOServer
import XCTest

/// The session's transport state machine, without sockets: a WebSocket is a stand-in object, a
/// parked GET a number.
final class EngineSessionStateTests: XCTestCase {
    final class FakeWebSocket {}
    typealias Machine = EngineSessionState<FakeWebSocket, Int>

    private func message(_ text: String) -> EngineIOPacket {
        EngineIOPacket(.message, payload: ByteBuffer(string: text))
    }

    private func decode(_ body: ByteBuffer) -> [String] {
        (try? PollingPayload.decode(body))?.map { "\($0.kind.rawValue)" + String(buffer: $0.payload) } ?? ["undecodable"]
    }

    func testAParkedPollIsAnsweredByTheNextSend() {
        var machine = Machine(webSocket: nil)
        guard case .parked = machine.poll(1) else { return XCTFail("a GET with nothing queued parks") }
        guard case .answer(1, let body) = machine.send([message("a")], limit: 1000) else { return XCTFail() }
        XCTAssertEqual(decode(body), ["4a"])
        guard case .none = machine.send([message("b")], limit: 1000) else { return XCTFail("nobody polls: queued") }
        guard case .answer(2, let next) = machine.poll(2) else { return XCTFail("a GET with something queued returns at once") }
        XCTAssertEqual(decode(next), ["4b"])
    }

    func testASecondParkedPollIsAnOverlap() {
        var machine = Machine(webSocket: nil)
        _ = machine.poll(1)
        guard case .overlap(2) = machine.poll(2) else { return XCTFail() }
    }

    func testALongOutboxGoesOutSixteenPacketsAPoll() {
        var machine = Machine(webSocket: nil)
        _ = machine.send((0..<40).map { message("\($0)") }, limit: 1 << 20)
        var counts: [Int] = []
        for poll in 1...3 {
            guard case .answer(_, let body) = machine.poll(poll) else { return XCTFail() }
            counts.append(decode(body).count)
        }
        XCTAssertEqual(counts, [16, 16, 8])
    }

    func testPassingTheLimitIsAnOverflow() {
        var machine = Machine(webSocket: nil)
        guard case .none = machine.send([message(String(repeating: "x", count: 90))], limit: 100) else { return XCTFail() }
        guard case .overflow = machine.send([message(String(repeating: "x", count: 20))], limit: 100) else { return XCTFail() }
        let close = machine.close(serverInitiated: false, slowConsumer: true, shutdown: false)
        XCTAssertEqual(close.droppedBytes, 112)
        XCTAssertTrue(machine.isClosed)
    }

    func testUpgradeNeedsAProbeAndMovesTheOutboxToTheWebSocket() {
        var machine = Machine(webSocket: nil)
        let probe = FakeWebSocket()
        guard case .refuse = machine.completeUpgrade() else { return XCTFail("5 without a probe") }
        XCTAssertTrue(machine.beginProbe(probe))
        XCTAssertFalse(machine.beginProbe(FakeWebSocket()), "a second probe while one is open")
        XCTAssertNil(machine.postRefusal, "polling goes on during the probe")
        guard case .answer(1, let noop) = machine.poll(1) else { return XCTFail("polls return at once during the probe") }
        XCTAssertEqual(decode(noop), ["6"])
        _ = machine.poll(2)
        _ = machine.send([message("queued")], limit: 1000)
        _ = machine.send([message("too")], limit: 1000)
        guard case .answer(3, _) = machine.poll(3) else { return XCTFail() }
        _ = machine.send([message("late")], limit: 1000)
        _ = machine.poll(4)
        guard case .upgraded(let endPoll, let queued) = machine.completeUpgrade() else { return XCTFail() }
        XCTAssertNil(endPoll, "poll 4 took what was queued")
        XCTAssertEqual(queued.count, 0)
        XCTAssertTrue(machine.webSocket === probe)
        XCTAssertEqual(machine.postRefusal, .badRequest)
        guard case .refuse(5, .badRequest) = machine.poll(5) else { return XCTFail() }
        guard case .write(let webSocket) = machine.send([message("x")], limit: 1000), webSocket === probe else { return XCTFail() }
        XCTAssertFalse(machine.beginProbe(FakeWebSocket()), "a second WebSocket after the upgrade")
    }

    func testTheUpgradeEndsAParkedPollAndCarriesWhatWasQueued() {
        var machine = Machine(webSocket: nil)
        guard case .parked = machine.poll(1) else { return XCTFail() }
        XCTAssertTrue(machine.beginProbe(FakeWebSocket()), "the parked GET stays parked through the probe")
        guard case .overlap(2) = machine.poll(2) else { return XCTFail() }
        guard case .upgraded(1, let none) = machine.completeUpgrade() else { return XCTFail("the parked GET ends") }
        XCTAssertTrue(none.isEmpty)

        var queuing = Machine(webSocket: nil)
        _ = queuing.send([message("a")], limit: 1000)
        XCTAssertTrue(queuing.beginProbe(FakeWebSocket()))
        guard case .upgraded(nil, let queued) = queuing.completeUpgrade() else { return XCTFail() }
        XCTAssertEqual(queued.map { String(buffer: $0.payload) }, ["a"])
    }

    func testAClosedProbeFallsBackToPolling() {
        var machine = Machine(webSocket: nil)
        XCTAssertTrue(machine.beginProbe(FakeWebSocket()))
        machine.probeClosed()
        XCTAssertNil(machine.probe)
        guard case .parked = machine.poll(1) else { return XCTFail("polling again: GETs park") }
        XCTAssertTrue(machine.beginProbe(FakeWebSocket()))
    }

    func testADirectWebSocketNeverPolls() {
        let webSocket = FakeWebSocket()
        var machine = Machine(webSocket: webSocket)
        guard case .refuse(1, .badRequest) = machine.poll(1) else { return XCTFail() }
        XCTAssertFalse(machine.beginProbe(FakeWebSocket()))
        let close = machine.close(serverInitiated: true, slowConsumer: false, shutdown: false)
        XCTAssertTrue(close.webSocket === webSocket)
        XCTAssertFalse(close.draining)
    }

    func testCloseAnswersTheParkedPollWithTheCloseLast() {
        var machine = Machine(webSocket: nil)
        _ = machine.send((0..<20).map { message("\($0)") }, limit: 1 << 20)
        _ = machine.poll(1)
        _ = machine.send([message("x")], limit: 1 << 20)
        _ = machine.poll(2)
        _ = machine.poll(3)  // parked: empty outbox
        _ = machine.send([message("y")], limit: 1 << 20)  // answered at once
        _ = machine.poll(4)
        let close = machine.close(serverInitiated: true, slowConsumer: false, shutdown: false)
        guard let (poll, body) = close.poll else { return XCTFail() }
        XCTAssertEqual(poll, 4)
        XCTAssertEqual(decode(body), ["1"])
    }

    func testAServerCloseWithoutAParkedPollDrainsThroughOneMoreGet() {
        var machine = Machine(webSocket: nil)
        _ = machine.send([message("41")], limit: 1000)
        let close = machine.close(serverInitiated: true, slowConsumer: false, shutdown: false)
        XCTAssertTrue(close.draining)
        XCTAssertTrue(machine.isClosed)
        guard case .none = machine.send([message("after")], limit: 1000) else { return XCTFail("nothing more is queued") }
        XCTAssertEqual(machine.postRefusal, .unknownSession)
        guard case .answer(1, let queued) = machine.poll(1) else { return XCTFail() }
        XCTAssertEqual(decode(queued), ["441"])
        guard case .answerAndForget(2, let last) = machine.poll(2) else { return XCTFail("the close packet comes alone") }
        XCTAssertEqual(decode(last), ["1"])
        guard case .refuse(3, .unknownSession) = machine.poll(3) else { return XCTFail() }
        XCTAssertFalse(machine.drainTimedOut())
    }

    func testDrainingEndsAtTheTimeout() {
        var machine = Machine(webSocket: nil)
        _ = machine.close(serverInitiated: true, slowConsumer: false, shutdown: false)
        XCTAssertTrue(machine.drainTimedOut())
        guard case .refuse(1, .unknownSession) = machine.poll(1) else { return XCTFail() }
    }

    func testShutdownAndClientClosesDoNotDrain() {
        for (serverInitiated, shutdown) in [(true, true), (false, false)] {
            var machine = Machine(webSocket: nil)
            XCTAssertFalse(machine.close(serverInitiated: serverInitiated, slowConsumer: false, shutdown: shutdown).draining)
            guard case .refuse(1, .unknownSession) = machine.poll(1) else { return XCTFail() }
        }
    }

    func testCloseIsIdempotentAndFinal() {
        var machine = Machine(webSocket: nil)
        XCTAssertFalse(machine.close(serverInitiated: false, slowConsumer: false, shutdown: false).alreadyClosed)
        XCTAssertTrue(machine.close(serverInitiated: false, slowConsumer: false, shutdown: false).alreadyClosed)
        XCTAssertEqual(machine.postRefusal, .unknownSession)
        XCTAssertFalse(machine.beginProbe(FakeWebSocket()))
    }

    func testAProbeIsClosedWithTheSession() {
        var machine = Machine(webSocket: nil)
        let probe = FakeWebSocket()
        XCTAssertTrue(machine.beginProbe(probe))
        let close = machine.close(serverInitiated: true, slowConsumer: false, shutdown: false)
        XCTAssertTrue(close.probe === probe)
        XCTAssertTrue(close.draining)
    }

    func testAClientCloseByPostEndsItsParkedGet() {
        var machine = Machine(webSocket: nil)
        _ = machine.poll(7)
        XCTAssertEqual(machine.takeParkedPoll(), 7)
        XCTAssertNil(machine.takeParkedPoll())
    }
}

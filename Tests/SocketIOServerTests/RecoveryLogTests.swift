import NIOCore
import SocketIOCodec
import XCTest

@testable import SocketIOServer

private struct Sent: Recoverable, Equatable {
    var offset: UInt64
    var madeAt: UInt64 = 0
    var byteCount: Int = 10
}

final class RecoveryLogTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testWhatCameAfterAnOffsetInOrder() {
        let log = RecoveryLog<Sent>(maxBytes: 1000, window: second)
        for offset in [3, 7, 8, 20] {
            log.append(Sent(offset: UInt64(offset)))
        }
        XCTAssertEqual(log.messages(after: 3).map(\.offset), [7, 8, 20])
        XCTAssertEqual(log.messages(after: 20).map(\.offset), [])
        XCTAssertTrue(log.contains(7))
        XCTAssertFalse(log.contains(5), "an offset never sent here")
        XCTAssertFalse(log.contains(0))
        XCTAssertEqual(log.evictedUpTo, 0)
    }

    func testTheByteLimitDropsTheOldestAndItsOffsetIsNoLongerRecoverable() {
        let log = RecoveryLog<Sent>(maxBytes: 350, window: second)
        for offset in 1...10 {
            log.append(Sent(offset: UInt64(offset), byteCount: 100))
        }
        XCTAssertEqual(log.messages.map(\.offset), [8, 9, 10])
        XCTAssertEqual(log.bytes, 300)
        XCTAssertFalse(log.contains(7))
        XCTAssertEqual(log.evictedUpTo, 7, "a client whose offset is below 7 missed something gone")
        XCTAssertEqual(log.messages(after: 8).map(\.offset), [9, 10])
    }

    func testOverflowDropsInOneGoDownToSevenEighthsAndTheBoundAlwaysHolds() {
        let log = RecoveryLog<Sent>(maxBytes: 8_000, window: 1_000 * second)
        var dropsSeen = 0
        var previous = 0
        for offset in 1...5_000 {
            log.append(Sent(offset: UInt64(offset), byteCount: 10 + offset % 7))
            XCTAssertLessThanOrEqual(log.bytes, 8_000)
            if log.count < previous {
                dropsSeen += 1
                XCTAssertLessThanOrEqual(log.bytes, 7_000, "a drop goes down to 7/8")
            }
            previous = log.count
        }
        // Many appends per drop, and the ring wrapped and grew on the way: still in order.
        XCTAssertLessThan(dropsSeen, 200)
        let offsets = log.messages.map(\.offset)
        XCTAssertEqual(offsets, Array(offsets.first!...5_000))
        XCTAssertEqual(log.bytes, log.messages.reduce(0) { $0 + $1.byteCount })
    }

    func testTheWindowDropsWhatIsOlder() {
        let log = RecoveryLog<Sent>(maxBytes: 1000, window: 2 * second)
        log.append(Sent(offset: 1, madeAt: 1 * second))
        log.append(Sent(offset: 2, madeAt: 2 * second))
        log.append(Sent(offset: 3, madeAt: 4 * second))
        XCTAssertEqual(log.messages.map(\.offset), [2, 3])
        log.evict(now: 10 * second)
        XCTAssertTrue(log.messages.isEmpty)
        XCTAssertEqual(log.bytes, 0)
        // A message made later than `now` (another loop's clock read) is not dropped for it.
        log.append(Sent(offset: 4, madeAt: 20 * second))
        log.evict(now: 19 * second)
        XCTAssertEqual(log.messages.map(\.offset), [4])
    }

    func testOffsetsReadAndWriteAsTheClientScriptExpects() {
        XCTAssertEqual(RecoverySettings.text(1), "~1")
        XCTAssertEqual(RecoverySettings.text(36 * 36), "~100")
        XCTAssertEqual(RecoverySettings.parse("~100"), 36 * 36)
        for bad in ["", "~", "100", "~-1", "~ZZ!", "~" + String(repeating: "z", count: 40)] {
            XCTAssertNil(RecoverySettings.parse(bad), bad)
        }
        XCTAssertTrue(RecoverySettings.isRecoverable(.transportClose))
        XCTAssertTrue(RecoverySettings.isRecoverable(.pingTimeout))
        XCTAssertFalse(RecoverySettings.isRecoverable(.clientNamespaceDisconnect))
        XCTAssertFalse(RecoverySettings.isRecoverable(.slowConsumer))
        XCTAssertFalse(RecoverySettings.isRecoverable(.serverShutdown))
    }

    func testAnOffsetIsAddedToAPacketAndTakenOffAgain() {
        func text(_ buffer: ByteBuffer?) -> String? { buffer.map { String(buffer: $0) } }
        let packet = ByteBuffer(string: #"2["message","x"]"#)
        let with = RecoverySettings.appending(36, to: packet)
        XCTAssertEqual(text(with), #"2["message","x","~10"]"#)
        XCTAssertEqual(text(RecoverySettings.removing(36, from: with!)), #"2["message","x"]"#)
        XCTAssertEqual(text(RecoverySettings.appending(1, to: ByteBuffer(string: "2/chat,[]"))), #"2/chat,["~1"]"#)
        XCTAssertEqual(text(RecoverySettings.removing(1, from: ByteBuffer(string: #"2/chat,["~1"]"#))), "2/chat,[]")
        // Not an array, or another offset: left alone.
        for bad in ["", "]", "2{}", #"2"x""#] {
            XCTAssertNil(RecoverySettings.appending(1, to: ByteBuffer(string: bad)), bad)
        }
        XCTAssertNil(RecoverySettings.removing(35, from: with!))
        XCTAssertNil(RecoverySettings.removing(36, from: packet))
        XCTAssertNil(RecoverySettings.removing(36, from: ByteBuffer(string: #""~10"]"#)))
    }

    func testAChannelHistoryKeepsOneCopyInOffsetOrderAndTellsWhatASocketMissed() {
        let settings = RecoverySettings(window: .seconds(60), maxBytes: 1_000)
        let history = ChannelHistory(settings)
        func message(_ text: String, excluded: String? = nil) -> (UInt64) -> OutboundMessage {
            { offset in
                OutboundMessage([EngineIOPacket(.message, payload: ByteBuffer(string: #"2["message",""# + text + #""]"#))],
                                offset: offset, isShared: true, excluded: excluded)
            }
        }
        let first = history.append(settings, message("a"))
        let second = history.append(settings, message("b", excluded: "sender"))
        let third = history.append(settings, message("c"))
        XCTAssertLessThan(first.offset, second.offset)
        XCTAssertLessThan(second.offset, third.offset)
        XCTAssertEqual(history.sent(since: 0, to: "s").messages.map(\.offset), [first.offset, second.offset, third.offset])
        // Not what it sent, not what came before it joined.
        XCTAssertEqual(history.sent(since: 0, to: "sender").messages.map(\.offset), [first.offset, third.offset])
        XCTAssertEqual(history.sent(since: second.offset, to: "s").messages.map(\.offset), [third.offset])
        XCTAssertEqual(history.sent(since: 0, to: "s").evictedUpTo, 0)
        // Past the byte limit the oldest go; a client that saw only `first` missed something gone.
        for _ in 0..<40 { _ = history.append(settings, message(String(repeating: "x", count: 20))) }
        let (kept, evictedUpTo) = history.sent(since: 0, to: "s")
        XCTAssertFalse(kept.contains { $0.offset == first.offset })
        XCTAssertGreaterThan(evictedUpTo, first.offset)
        XCTAssertFalse(history.isStale(before: 0))
        XCTAssertTrue(history.isStale(before: UInt64.max))
    }
}

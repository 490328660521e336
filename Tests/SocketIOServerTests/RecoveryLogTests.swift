import XCTest

@testable import SocketIOServer

final class RecoveryLogTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testWhatCameAfterAnOffsetInOrder() {
        var log = RecoveryLog<String>()
        for (offset, text) in [(3, "a"), (7, "b"), (8, "c"), (20, "d")] {
            log.append(offset: UInt64(offset), message: text, bytes: 10, at: 0, maxBytes: 1000, window: second)
        }
        XCTAssertEqual(log.after(3)?.map(\.message), ["b", "c", "d"])
        XCTAssertEqual(log.after(20)?.map(\.message), [])
        XCTAssertNil(log.after(5), "an offset never sent here")
        XCTAssertNil(log.after(0))
    }

    func testTheByteLimitDropsTheOldestAndItsOffsetIsNoLongerRecoverable() {
        var log = RecoveryLog<Int>()
        for offset in 1...10 {
            log.append(offset: UInt64(offset), message: offset, bytes: 100, at: 0, maxBytes: 350, window: second)
        }
        XCTAssertEqual(log.entries.map(\.message), [8, 9, 10])
        XCTAssertEqual(log.bytes, 300)
        XCTAssertEqual(log.lostBefore, 7)
        XCTAssertNil(log.after(7))
        XCTAssertEqual(log.after(8)?.map(\.message), [9, 10])
    }

    func testTheWindowDropsWhatIsOlder() {
        var log = RecoveryLog<Int>()
        log.append(offset: 1, message: 1, bytes: 1, at: 1 * second, maxBytes: 1000, window: 2 * second)
        log.append(offset: 2, message: 2, bytes: 1, at: 2 * second, maxBytes: 1000, window: 2 * second)
        log.append(offset: 3, message: 3, bytes: 1, at: 4 * second, maxBytes: 1000, window: 2 * second)
        XCTAssertEqual(log.entries.map(\.message), [2, 3])
        log.evict(now: 10 * second, maxBytes: 1000, window: 2 * second)
        XCTAssertTrue(log.entries.isEmpty)
        XCTAssertEqual(log.bytes, 0)
        // A message stamped later than `now` (another loop's clock read) is not dropped for it.
        log.append(offset: 4, message: 4, bytes: 1, at: 20 * second, maxBytes: 1000, window: 2 * second)
        log.evict(now: 19 * second, maxBytes: 1000, window: 2 * second)
        XCTAssertEqual(log.entries.map(\.message), [4])
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
}

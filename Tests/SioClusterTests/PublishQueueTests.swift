import NIOCore
import XCTest

@testable import SioCluster

final class PublishQueueTests: XCTestCase {
    private func message(_ size: Int, _ fill: Character = "a") -> ByteBuffer {
        ByteBuffer(string: String(repeating: fill, count: size))
    }

    func testSmallMessagesShareOneNotificationUpToTheLimit() {
        var queue = PublishQueue(node: "n", notifyLimit: 100)
        for _ in 0..<30 { queue.append(message(10), isText: true) }
        var sizes: [Int] = []
        var headers: [String] = []
        while let batch = queue.next() {
            guard case .notify(let payload) = batch else { return XCTFail("\(batch)") }
            headers.append(String(payload.prefix { $0 != "\n" }))
            XCTAssertLessThanOrEqual(payload.utf8.count, 100)
            sizes.append(payload.utf8.count)
        }
        XCTAssertEqual(sizes, [94, 94, 94, 34])
        XCTAssertEqual(headers, ["n 1", "n 2", "n 3", "n 4"], "numbered, so that no two payloads are equal")
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.queuedBytes, 0)
    }

    func testLargeAndBinaryMessagesGoByTableInOrder() {
        var queue = PublishQueue(node: "n", notifyLimit: 100, rowLimit: 1000)
        queue.append(message(5, "a"), isText: true)
        queue.append(message(500, "b"), isText: true)
        queue.append(message(5, "c"), isText: false)
        queue.append(message(5, "d"), isText: true)
        queue.append(message(5, "e"), isText: true)
        XCTAssertEqual(queue.next(), .notify("n 1\naaaaa"))
        guard case .table(let row)? = queue.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: row), String(repeating: "b", count: 500) + "ccccc")
        XCTAssertEqual(queue.header(), "n 2\n", "the reference to the row takes the next number")
        XCTAssertEqual(queue.next(), .notify("n 3\ndddddeeeee"))
        XCTAssertNil(queue.next())
    }

    func testATableRowStopsAtItsLimitButTakesOneLargerMessageAlone() {
        var queue = PublishQueue(node: "n", notifyLimit: 100, rowLimit: 1000)
        queue.append(message(2000), isText: true)
        queue.append(message(600), isText: true)
        queue.append(message(600), isText: true)
        var rows: [Int] = []
        while case .table(let row)? = queue.next() { rows.append(row.readableBytes) }
        XCTAssertEqual(rows, [2000, 600, 600])
    }

    func testAFullQueueDropsAndCountsAndDiscardingEmptiesIt() {
        var queue = PublishQueue(node: "n", maxQueuedBytes: 25)
        XCTAssertTrue(queue.append(message(10), isText: true))
        XCTAssertTrue(queue.append(message(10), isText: true))
        XCTAssertFalse(queue.append(message(10), isText: true))
        XCTAssertEqual(queue.discardAll(), 3)
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.queuedBytes, 0)
        XCTAssertEqual(queue.discardAll(), 0)
    }
}

import XCTest

@testable import SioPluginHost

final class InFlightTableTests: XCTestCase {
    func testAnsweredInAnyOrderAndFoundById() {
        var table = InFlightTable<String>()
        XCTAssertTrue(table.isEmpty)
        for id in UInt64(5)...9 { table.insert("e\(id)", id: id) }
        XCTAssertEqual(table[7], "e7")
        XCTAssertNil(table[4])
        XCTAssertNil(table[10])
        XCTAssertEqual(table.remove(7), "e7")
        XCTAssertNil(table.remove(7), "answered twice")
        XCTAssertEqual(table.remove(5), "e5")
        XCTAssertEqual(table.all.map(\.id), [6, 8, 9])
        XCTAssertEqual(table.ids { $0 != "e8" }, [6, 9])
        // A gap in the ids (an event never sent) is fine.
        table.insert("e20", id: 20)
        XCTAssertEqual(table[20], "e20")
        for id in [6, 8, 9, 20] as [UInt64] { XCTAssertNotNil(table.remove(id)) }
        XCTAssertTrue(table.isEmpty)
        // Ids from a broken peer find nothing.
        XCTAssertNil(table.remove(.max))
        XCTAssertNil(table[0])
    }

    /// One event answered late does not keep everything sent after it: parked, or past the
    /// window, it moves aside and is still found.
    func testALateEventMovesAsideAndTheRingStaysSmall() {
        for parked in [true, false] {
            var table = InFlightTable<UInt64>(window: 64)
            let count: UInt64 = 64 * 3
            table.insert(0, id: 1)  // deferred
            if parked { table.park(1) }
            for id in 2...count {
                table.insert(id, id: id)
                XCTAssertEqual(table.remove(id), id)
            }
            XCTAssertEqual(table.all.map(\.id), [1])
            XCTAssertEqual(table[1], 0)
            table.park(1)  // parked twice: no change
            XCTAssertEqual(table.remove(1), 0)
            XCTAssertTrue(table.isEmpty)
            table.insert(7, id: count + 1)
            table.removeAll()
            XCTAssertTrue(table.isEmpty)
        }
        var table = InFlightTable<Int>()
        table.park(3)  // unknown: nothing happens
        XCTAssertTrue(table.isEmpty)
    }
}

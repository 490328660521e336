import Foundation
import XCTest

@testable import SioPlugin

final class PluginStateTests: XCTestCase {
    private struct Rooms: Codable, Sendable, Equatable {
        var names: [String: Int] = [:]
    }

    private struct Other: Codable, Sendable {
        var list: [Int] = [1]
    }

    func testTheValueGoesToTheNextVersionAsJSON() {
        let old = PluginState(Rooms(names: ["lobby": 3]))
        let new = PluginState(Rooms())
        XCTAssertTrue(new.restore(old.encoded()))
        XCTAssertEqual(new.current, Rooms(names: ["lobby": 3]))
    }

    func testAStateThatDoesNotDecodeLeavesTheInitialValue() {
        let new = PluginState(Rooms(names: ["initial": 1]))
        XCTAssertFalse(new.restore(PluginState(Other()).encoded()))
        XCTAssertFalse(new.restore(Array("not json".utf8)))
        XCTAssertFalse(new.restore([]))
        XCTAssertEqual(new.current, Rooms(names: ["initial": 1]))
    }

    func testConcurrentChangesAreNotLost() {
        let state = PluginState(Rooms())
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 { state.withValue { $0.names["n", default: 0] += 1 } }
        }
        XCTAssertEqual(state.current.names["n"], 8000)
    }
}

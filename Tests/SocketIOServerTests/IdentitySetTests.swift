import XCTest

@testable import SocketIOServer

final class IdentitySetTests: XCTestCase {
    private final class Item {}

    func testInsertIsIdempotentAndRemoveKeepsEveryOtherMember() {
        let items = (0..<100).map { _ in Item() }
        var set = IdentitySet<Item>()
        for item in items + items { set.insert(item) }
        XCTAssertEqual(set.members.count, 100)

        var generator = SystemRandomNumberGenerator()
        var remaining = items
        while !remaining.isEmpty {
            let victim = remaining.remove(at: Int.random(in: 0..<remaining.count, using: &generator))
            set.remove(victim)
            set.remove(victim)  // a second removal changes nothing
            XCTAssertEqual(Set(set.members.map(ObjectIdentifier.init)), Set(remaining.map(ObjectIdentifier.init)))
        }
        XCTAssertTrue(set.isEmpty)
    }

    func testMembersHandedOutAreNotChangedByLaterMutations() {
        let a = Item(), b = Item(), c = Item()
        var set = IdentitySet<Item>()
        set.insert(a)
        set.insert(b)
        let snapshot = set.members
        set.remove(a)
        set.insert(c)
        XCTAssertTrue(snapshot.count == 2 && snapshot[0] === a && snapshot[1] === b)
        XCTAssertEqual(Set(set.members.map(ObjectIdentifier.init)), [ObjectIdentifier(b), ObjectIdentifier(c)])
        set.insert(a)
        XCTAssertEqual(set.members.count, 3)
    }
}

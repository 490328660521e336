@testable import SocketIOServer
import XCTest

final class IdentifierTests: XCTestCase {
    /// The reference server's shape, and never a leading "-", which the CLI would read as an
    /// option (`sio send ID MESSAGE`): one id in 64 did before.
    func testIdsAreTwentyURLSafeCharactersNeverStartingWithADash() {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = Identifier.make()
            XCTAssertEqual(id.count, 20)
            XCTAssertTrue(id.allSatisfy(allowed.contains), id)
            XCTAssertFalse(id.hasPrefix("-"), id)
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 20_000)
    }
}

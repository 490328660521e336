import XCTest

@testable import SocketIOServer

final class OriginPolicyTests: XCTestCase {
    func testOwnOriginOnlyByDefault() {
        let policy = OriginPolicy(allowed: [])
        XCTAssertTrue(policy.allows(origin: nil, host: "127.0.0.1:8000"))
        XCTAssertTrue(policy.allows(origin: "http://127.0.0.1:8000", host: "127.0.0.1:8000"))
        XCTAssertTrue(policy.allows(origin: "https://chat.example", host: "chat.example"))  // a proxy's $host
        XCTAssertTrue(policy.allows(origin: "http://chat.example", host: "chat.example:80"))
        XCTAssertFalse(policy.allows(origin: "http://evil.example", host: "127.0.0.1:8000"))
        XCTAssertFalse(policy.allows(origin: "http://127.0.0.1:9000", host: "127.0.0.1:8000"))
        XCTAssertFalse(policy.allows(origin: "http://127.0.0.1:8000", host: nil))
        XCTAssertFalse(policy.allows(origin: "null", host: "127.0.0.1:8000"))
    }

    func testConfiguredOrigins() {
        let policy = OriginPolicy(allowed: ["http://good.example"])
        XCTAssertTrue(policy.allows(origin: "http://good.example", host: "api.example"))
        XCTAssertFalse(policy.allows(origin: "http://evil.example", host: "api.example"))
        XCTAssertTrue(OriginPolicy(allowed: ["*"]).allows(origin: "http://anything.example", host: "api.example"))
    }
}

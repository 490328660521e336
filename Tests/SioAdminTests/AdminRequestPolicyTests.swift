import XCTest

@testable import SioAdmin

final class AdminRequestPolicyTests: XCTestCase {
    let open = AdminRequestPolicy(token: nil)

    private func check(_ policy: AdminRequestPolicy, method: String = "POST", host: String? = "127.0.0.1:8001",
                       origin: String? = nil, type: String? = "application/json", authorization: String? = nil,
                       path: String = "/reload") -> Int? {
        policy.check(method: method, path: path, host: host, origin: origin, contentType: type, authorization: authorization, port: 8001)?.status
    }

    func testTheCLIsRequestsPass() {
        XCTAssertNil(check(open))
        XCTAssertNil(check(open, host: "localhost:8001"))
        XCTAssertNil(check(open, host: "[::1]:8001"))
        XCTAssertNil(check(open, host: "::1:8001"))
        XCTAssertNil(check(open, method: "GET", type: nil))
        XCTAssertNil(check(open, type: "application/json; charset=utf-8"))
    }

    func testDNSRebindingAndForeignPagesAreRefused() {
        XCTAssertEqual(check(open, host: "evil.example"), 403)
        XCTAssertEqual(check(open, host: "evil.example:8001"), 403)
        XCTAssertEqual(check(open, host: "127.0.0.1:9999"), 403)
        XCTAssertEqual(check(open, host: nil), 403)
        XCTAssertEqual(check(open, origin: "http://evil.example"), 403)
        XCTAssertNil(check(open, origin: "http://127.0.0.1:8001"))
        XCTAssertEqual(check(open, type: "text/plain"), 415)
        XCTAssertEqual(check(open, type: nil), 415)
    }

    func testATokenIsRequiredWhenSetAndHostIsThenFree() {
        let locked = AdminRequestPolicy(token: "s3cret")
        XCTAssertEqual(check(locked), 401)
        XCTAssertEqual(check(locked, authorization: "Bearer "), 401)
        XCTAssertEqual(check(locked, authorization: "Bearer s3cre"), 401)
        XCTAssertNil(check(locked, host: "admin.example:8001", authorization: "Bearer s3cret"))
        XCTAssertEqual(check(locked, origin: "http://evil.example", authorization: "Bearer s3cret"), 403)
    }

    /// The page is code without data: it loads without the token (a navigation cannot carry
    /// one), and everything it then asks for needs the token again.
    func testThePageLoadsWithoutTheTokenAndNothingElseDoes() {
        let locked = AdminRequestPolicy(token: "s3cret")
        XCTAssertNil(check(locked, method: "GET", host: "admin.example:8001", type: nil, path: "/"))
        XCTAssertNil(check(locked, method: "GET", type: nil, path: "/?refresh=1"))
        XCTAssertEqual(check(locked, method: "POST", path: "/"), 401)
        XCTAssertEqual(check(locked, method: "GET", type: nil, path: "/sockets"), 401)
        XCTAssertEqual(check(locked, method: "GET", type: nil, path: "/metrics"), 401)
        XCTAssertEqual(check(locked, method: "GET", type: nil, path: "/index.html/../sockets"), 401)
        XCTAssertEqual(check(locked, method: "GET", origin: "http://evil.example", type: nil, path: "/"), 403)
        // Without a token the loopback rule holds for the page too.
        XCTAssertEqual(check(open, method: "GET", host: "evil.example", type: nil, path: "/"), 403)
        XCTAssertNil(check(open, method: "GET", type: nil, path: "/"))
    }
}

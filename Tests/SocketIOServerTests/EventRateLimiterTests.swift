import XCTest

@testable import SocketIOServer

final class EventRateLimiterTests: XCTestCase {
    private let second: Int64 = 1_000_000_000

    func testBurstThenRate() {
        var limiter = EventRateLimiter(rate: 10, burst: 3, now: 0)
        XCTAssertEqual((0..<3).map { _ in limiter.event(now: 0) }, [.accept, .accept, .accept])
        XCTAssertEqual(limiter.event(now: 0), .dropAndReport)
        XCTAssertEqual(limiter.event(now: 0), .drop, "one report per run of drops")
        XCTAssertEqual(limiter.event(now: second / 10), .accept, "a tenth of a second refills one token")
        XCTAssertEqual(limiter.event(now: second / 10), .dropAndReport, "a new run of drops is reported again")
        XCTAssertEqual((0..<3).map { _ in limiter.event(now: 10 * second) }, [.accept, .accept, .accept], "refilled up to the burst, not beyond")
        XCTAssertEqual(limiter.event(now: 10 * second), .dropAndReport)
    }

    func testAClientWithinTheRateIsNeverDropped() {
        // 1.2 times the rate for 20 s: drops, but never enough to be disconnected.
        var busy = EventRateLimiter(rate: 100, burst: 100, now: 0)
        for index in 0..<2_400 {
            XCTAssertNotEqual(busy.event(now: Int64(index) * second / 120), .disconnect)
        }
        var limiter = EventRateLimiter(rate: 100, burst: 100, now: 0)
        for index in 0..<10_000 {
            XCTAssertEqual(limiter.event(now: Int64(index) * second / 100), .accept)
        }
    }

    /// Twice the rate: the burst and the refill take the first second, then half of what comes
    /// is dropped, and 2.5 s of that passes the threshold.
    func testAClientThatKeepsFloodingIsDisconnected() {
        var limiter = EventRateLimiter(rate: 100, burst: 100, now: 0)
        var verdicts: [EventRateLimiter.Verdict] = []
        for index in 0..<2_000 {  // 200 a second, for up to 10 s
            verdicts.append(limiter.event(now: Int64(index) * second / 200))
            if verdicts.last == .disconnect { break }
        }
        XCTAssertEqual(verdicts.last, .disconnect)
        let seconds = Double(verdicts.count) / 200
        XCTAssertGreaterThan(seconds, 3)
        XCTAssertLessThan(seconds, 4)
    }
}

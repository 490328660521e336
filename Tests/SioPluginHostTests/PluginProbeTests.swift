@testable import SioPluginHost
import XCTest

/// The probe's verdicts, from real child processes (a shell standing in for `sio probe-plugin`):
/// the parent sleeps in poll() on the child's stdout and must neither miss an ending nor take a
/// chatty or long-lived child for a hung one.
final class PluginProbeTests: XCTestCase {
    private func verdict(_ script: String, timeout: Duration = .seconds(5)) -> (PluginProbe.Verdict, Duration) {
        var probe = PluginProbe(command: ["/bin/sh", "-c", script])
        probe.timeout = timeout
        let start = ContinuousClock.now
        let verdict = probe.run("/nonexistent/plugin.so")
        return (verdict, ContinuousClock.now - start)
    }

    func testMappedAndRefusedCleanlyBothSurvive() {
        XCTAssertEqual(verdict("exit 0").0, .survived)
        XCTAssertEqual(verdict("exit 3").0, .survived)
    }

    func testAnyOtherEndingIsACrash() {
        XCTAssertEqual(verdict("exit 127").0, .failed(status: 127))
        XCTAssertEqual(verdict("kill -SEGV $$").0, .crashed(signal: SIGSEGV))
        XCTAssertEqual(verdict("kill -ABRT $$").0, .crashed(signal: SIGABRT))
    }

    func testAHungChildIsKilledAtTheTimeout() {
        let (result, took) = verdict("sleep 30", timeout: .milliseconds(300))
        XCTAssertEqual(result, .hung)
        XCTAssertLessThan(took, .seconds(5))
    }

    func testAChildThatEndsIsSeenAtOnce() {
        let (result, took) = verdict("sleep 0.2; exit 0", timeout: .seconds(20))
        XCTAssertEqual(result, .survived)
        XCTAssertLessThan(took, .seconds(10), "woken by the end of the pipe, not by the timeout")
    }

    func testAChattyChildDoesNotBlockOnAFullPipe() {
        XCTAssertEqual(verdict("head -c 300000 /dev/zero; exit 0").0, .survived)
    }

    func testADescendantHoldingThePipeDoesNotMakeAHang() {
        // The child ends at once; a background process keeps its stdout open past the timeout.
        let (result, _) = verdict("sleep 2 & exit 0", timeout: .milliseconds(300))
        XCTAssertEqual(result, .survived)
    }
}

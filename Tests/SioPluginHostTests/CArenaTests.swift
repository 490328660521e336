import CSioPlugin
import XCTest

@testable import SioPluginHost

final class CArenaTests: XCTestCase {
    /// Bytes across chunk boundaries and past a chunk's size keep their contents, their NUL and
    /// their neighbours'; values are aligned for their type.
    func testBuffersAndValuesSurviveChunkBoundaries() {
        let arena = CArena()
        var written: [(sio_buf, [UInt8])] = []
        for size in [0, 1, 7, 100, 511, 513, 1023, 1024, 5000, 3, 900, 900, 900] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
            written.append((arena.buf(bytes), bytes))
            let value = arena.value(sio_request())
            XCTAssertEqual(Int(bitPattern: value) % MemoryLayout<sio_request>.alignment, 0)
            let headers = arena.array([sio_header(), sio_header()])!
            XCTAssertEqual(Int(bitPattern: headers) % MemoryLayout<sio_header>.alignment, 0)
        }
        for (buf, bytes) in written {
            XCTAssertEqual(buf.bytes, bytes)
            if let ptr = buf.ptr { XCTAssertEqual(ptr[bytes.count], 0, "NUL after \(bytes.count) bytes") }
        }
    }

    /// Reset for the next event: the first chunk is reused, the rest freed.
    func testResetReusesTheFirstChunk() {
        let arena = CArena()
        arena.reset()  // nothing allocated yet
        let first = arena.buf(Array("one".utf8))
        _ = arena.buf([UInt8](repeating: 1, count: 3000))
        arena.reset()
        let again = arena.buf(Array("two".utf8))
        XCTAssertEqual(again.ptr, first.ptr)
        XCTAssertEqual(again.bytes, Array("two".utf8))
        let big = arena.buf([UInt8](repeating: 7, count: 2000))
        XCTAssertEqual(big.bytes, [UInt8](repeating: 7, count: 2000))
    }
}

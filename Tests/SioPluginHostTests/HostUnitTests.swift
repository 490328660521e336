import CSioPlugin
import SocketIOServer
import XCTest
import Foundation

@testable import SioPluginHost

final class ABILayoutTests: XCTestCase {
    /// The Swift importer must agree with the C compilers (Tests/interop/test_abi.py pins those).
    func testSwiftSeesThePinnedLayout() {
        XCTAssertEqual(MemoryLayout<sio_buf>.size, 16)
        XCTAssertEqual(MemoryLayout<sio_request>.size, 88)
        XCTAssertEqual(MemoryLayout<sio_message>.size, 64)
        XCTAssertEqual(MemoryLayout<sio_event>.size, 136)
        XCTAssertEqual(MemoryLayout<sio_event>.offset(of: \.reason), 120)
        XCTAssertEqual(MemoryLayout<sio_host_api>.size, 280)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.json_quote), 176)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.emit_to), 184)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.emit_with_ack), 208)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.defer), 216)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.complete), 224)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.presence_set), 232)
        XCTAssertEqual(MemoryLayout<sio_host_api>.offset(of: \.oob_socket_disconnect), 272)
        XCTAssertEqual(MemoryLayout<sio_ack_reply>.size, 88)
        XCTAssertEqual(MemoryLayout<sio_ack_reply>.offset(of: \.args_json), 56)
        XCTAssertEqual(MemoryLayout<sio_plugin_info>.size, 56)
        XCTAssertEqual(MemoryLayout<sio_plugin_info>.offset(of: \.retire), 40)
        XCTAssertEqual(MemoryLayout<sio_plugin_info>.offset(of: \.adopt), 48)
    }
}

final class ChannelPatternTests: XCTestCase {
    func testMatchesAtTheStartLikePythonReMatch() throws {
        let room = try ChannelPattern("room-")
        XCTAssertTrue(room.matches("room-42"))
        XCTAssertFalse(room.matches("my-room-42"))
        XCTAssertTrue(try ChannelPattern("^room-").matches("room-1"))
        XCTAssertTrue(try ChannelPattern("dash|room").matches("room"))
        XCTAssertTrue(try ChannelPattern("r[0-9]+$").matches("r12"))
        XCTAssertFalse(try ChannelPattern("r[0-9]+$").matches("r12x"))
        XCTAssertTrue(room.matchesAny(["a", "room-x"]))
        XCTAssertFalse(room.matchesAny([]))
    }

    func testInvalidPatternsThrow() {
        XCTAssertThrowsError(try ChannelPattern("room-("))
        XCTAssertThrowsError(try ChannelPattern("[a-"))
    }

    /// What RE2 cannot run in linear time is refused with its reason, not run slowly.
    func testBackreferencesAndLookaroundAreRefused() {
        for pattern in [#"(a)\1"#, "(?=room)", "(?!x)y", "(?<=a)b"] {
            XCTAssertThrowsError(try ChannelPattern(pattern), pattern) {
                XCTAssertFalse("\($0)".isEmpty)
            }
        }
    }

    /// The syntax the docs promise (docs/events.md, "Pattern syntax").
    func testDocumentedSyntax() throws {
        let cases: [(String, String, Bool)] = [
            ("room-[0-9]{2,3}$", "room-42", true), ("room-[0-9]{2,3}$", "room-4", false),
            (#"user\.\d+"#, "user.7", true), (#"user\.\d+"#, "userx7", false),
            ("(?i)ROOM", "room", true), ("a|b", "b-1", true), ("[^-]+-x", "ab-x", true),
            (#"\w+@"#, "me@", true), ("é", "été", true), ("x*", "", true), ("room", "", false),
        ]
        for (pattern, channel, expected) in cases {
            XCTAssertEqual(try ChannelPattern(pattern).matches(channel), expected, "\(pattern) on \(channel)")
        }
    }

    func testNestedQuantifiersRunInLinearTime() throws {
        let pattern = try ChannelPattern("(a+)+$")
        XCTAssertFalse(pattern.matches(String(repeating: "a", count: 10_000) + "!"))
        XCTAssertTrue(pattern.matches(String(repeating: "a", count: 10_000)))
    }
}

final class MessageLogTests: XCTestCase {
    let request = HandshakeRequest(
        method: "GET", path: "/socket.io/", query: "EIO=4&transport=websocket",
        headers: [("User-Agent", "test-agent"), ("X-Forwarded-For", "10.1.1.1")], remoteAddress: "127.0.0.1")

    func testDefaultFormat() {
        let log = MessageLog(format: MessageLog.defaultFormat) { _ in }
        let line = log.format(request: request, type: "message", message: #"{"a":1}"#, time: Date(timeIntervalSince1970: 0))
        XCTAssertEqual(line, #"127.0.0.1 - - [1970-01-01 00:00:00] "Socket.IO message: {"a":1}""#)
    }

    func testKeysEscapesAndUnknowns() {
        let log = MessageLog(format: "%(REQUEST_METHOD)s %(PATH_INFO)s?%(QUERY_STRING)s %(HTTP_USER_AGENT)s %(HTTP_X_FORWARDED_FOR)s %(NOPE)s 100%% %(TYPE)s %d") { _ in }
        XCTAssertEqual(log.format(request: request, type: "subscribe", message: "", time: Date()),
                       "GET /socket.io/?EIO=4&transport=websocket test-agent 10.1.1.1 - 100% subscribe %d")
    }

    func testNoneTurnsLoggingOff() {
        XCTAssertNil(MessageLog.from(environmentValue: "none"))
        XCTAssertNil(MessageLog.from(environmentValue: "None"))
        XCTAssertEqual(MessageLog.from(environmentValue: nil), MessageLog.defaultFormat)
        XCTAssertEqual(MessageLog.from(environmentValue: "%(TYPE)s"), "%(TYPE)s")
    }

    func testJSONPath() throws {
        let document = try JSONValue(parsing: #"[{"name":"ada","tags":["x","y"]},3]"#)
        XCTAssertEqual(JSONPath.lookup("0.name", in: document), "ada")
        XCTAssertEqual(JSONPath.lookup("0.tags.1", in: document), "y")
        XCTAssertEqual(JSONPath.lookup("1", in: document), 3)
        XCTAssertNil(JSONPath.lookup("2", in: document))
        XCTAssertNil(JSONPath.lookup("1.x", in: document))
    }
}

import Foundation
import SocketIOCodec

final class ELFCheckTests: XCTestCase {
    /// A real shared object from the system: the C library this process has mapped.
    private func systemLibrary() throws -> [UInt8] {
        let maps = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        let path = try XCTUnwrap(maps.split(separator: "\n").compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init)
        }.first { $0.hasPrefix("/") && $0.contains("/libc.so") })
        return try XCTUnwrap(FileManager.default.contents(atPath: path).map { [UInt8]($0) })
    }

    func testAWholeLibraryPasses() throws {
        XCTAssertNoThrow(try ELFCheck.validate(try systemLibrary()))
    }

    func testEveryTruncationIsRefused() throws {
        let library = try systemLibrary()
        let step = max(1, library.count / 300)
        for length in stride(from: 0, to: library.count, by: step) {
            XCTAssertThrowsError(try ELFCheck.validate(Array(library[..<length])), "\(length) bytes")
        }
    }

    func testNamesWhatIsWrong() throws {
        var library = try systemLibrary()
        XCTAssertThrowsError(try ELFCheck.validate(Array("not an ELF file at all, but long enough to have a header........".utf8))) {
            XCTAssertEqual("\($0)", "not an ELF file")
        }
        library[4] = 1  // 32-bit class
        XCTAssertThrowsError(try ELFCheck.validate(library)) { XCTAssertEqual("\($0)", "not a 64-bit little-endian ELF file") }
        library[4] = 2
        library[16] = 2  // an executable, not a shared object
        XCTAssertThrowsError(try ELFCheck.validate(library)) { XCTAssertTrue("\($0)".hasPrefix("not a shared object")) }
        library[16] = 3
        // The first program header's file size, made huge: the segment now ends past the file.
        let phoff = Int(library.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        for index in 0..<8 { library[phoff + 32 + index] = 0x7f }
        XCTAssertThrowsError(try ELFCheck.validate(library)) { XCTAssertTrue("\($0)".hasPrefix("truncated: segment 0 ends at byte")) }
    }

    func testHandlerVerdictsFollowTheABI() {
        XCTAssertEqual(HandlerVerdict.of(SIO_OK, kind: SIO_EVENT_MESSAGE, reason: nil, deferred: false), .next)
        XCTAssertEqual(HandlerVerdict.of(SIO_PENDING, kind: SIO_EVENT_MESSAGE, reason: nil, deferred: true), .next)
        XCTAssertEqual(HandlerVerdict.of(SIO_PENDING, kind: SIO_EVENT_MESSAGE, reason: nil, deferred: false),
                       .fail("returned SIO_PENDING without api->defer"))
        XCTAssertEqual(HandlerVerdict.of(SIO_REFUSE, kind: SIO_EVENT_SUBSCRIBE, reason: "members only", deferred: false),
                       .refuse("members only", isFailure: false))
        XCTAssertEqual(HandlerVerdict.of(SIO_REFUSE, kind: SIO_EVENT_CONNECT, reason: nil, deferred: false), .refuse("refused", isFailure: false))
        XCTAssertEqual(HandlerVerdict.of(SIO_REFUSE, kind: SIO_EVENT_MESSAGE, reason: nil, deferred: false),
                       .fail("handler failed with status 1"))
        XCTAssertEqual(HandlerVerdict.of(SIO_FAIL, kind: SIO_EVENT_CONNECT, reason: "down", deferred: false), .refuse("down", isFailure: true))
        XCTAssertEqual(HandlerVerdict.of(SIO_FAIL, kind: SIO_EVENT_FINISH, reason: "oops", deferred: false), .fail("oops"))
        XCTAssertEqual(HandlerVerdict.of(42, kind: SIO_EVENT_ERROR, reason: nil, deferred: false), .fail("handler failed with status 42"))
    }
}

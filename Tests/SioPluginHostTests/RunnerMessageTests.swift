import CSioPlugin
@testable import SioPluginHost
import XCTest

/// The runner wire format, without sockets: whole, split and broken input.
final class RunnerMessageTests: XCTestCase {
    private let sample = RunnerMessage(kind: .event, id: 42, number: -7, fields: [Array("a".utf8), [], [0, 255, 10]])

    func testAMessageRoundTrips() throws {
        var bytes = sample.encoded()
        var start = 0
        let decoded = try XCTUnwrap(RunnerMessage.decode(from: &bytes, start: &start))
        XCTAssertEqual(decoded, sample)
        XCTAssertEqual(start, bytes.count)
        XCTAssertNil(try RunnerMessage.decode(from: &bytes, start: &start))
        // Fields are read where they lie; past the last (or before the first) there is none.
        XCTAssertEqual(decoded.fieldCount, 3)
        XCTAssertEqual(decoded.text(0), "a")
        XCTAssertEqual(Array(decoded.field(1)), [])
        XCTAssertEqual(Array(decoded.field(2)), [0, 255, 10])
        XCTAssertEqual(Array(decoded.field(3)), [])
        XCTAssertEqual(Array(decoded.field(-1)), [])
        XCTAssertEqual(decoded.fields, [Array("a".utf8), [], [0, 255, 10]])
        XCTAssertEqual(decoded.fieldSlices.map { Array($0) }, decoded.fields)
    }

    func testAMessageArrivingByteByByteIsDecodedOnlyWhenWhole() throws {
        let whole = sample.encoded() + RunnerMessage(kind: .retire).encoded()
        var buffer: [UInt8] = []
        var start = 0
        var decoded: [RunnerMessage] = []
        for byte in whole {
            buffer.append(byte)
            while let message = try RunnerMessage.decode(from: &buffer, start: &start) { decoded.append(message) }
        }
        XCTAssertEqual(decoded, [sample, RunnerMessage(kind: .retire)])
    }

    func testBrokenInputIsRefusedNotTrusted() {
        func decode(_ bytes: [UInt8]) throws -> RunnerMessage? {
            var bytes = bytes
            var start = 0
            return try RunnerMessage.decode(from: &bytes, start: &start)
        }
        // A length past the limit.
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0x7F]))
        // An unknown kind.
        var unknown = sample.encoded()
        unknown[4] = 200
        XCTAssertThrowsError(try decode(unknown))
        // A field longer than the message.
        var long = RunnerMessage(kind: .done, fields: [[1, 2, 3]]).encoded()
        long[4 + 1 + 8 + 8 + 4] = 99
        XCTAssertThrowsError(try decode(long))
        // Bytes after the last field, inside the declared length.
        var extra = RunnerMessage(kind: .done).encoded()
        extra[0] += 1
        extra.append(0)
        XCTAssertThrowsError(try decode(extra))
        // A header cut short inside the declared length.
        XCTAssertThrowsError(try decode([3, 0, 0, 0, 22, 0, 0]))
    }

    func testPackedListsRoundTripAndBrokenOnesAreNil() {
        let list: [[UInt8]] = [[], [1], Array("name".utf8)]
        XCTAssertEqual(RunnerMessage.unpack(RunnerMessage.pack(list)), list)
        XCTAssertEqual(RunnerMessage.unpack(RunnerMessage.pack([])), [])
        XCTAssertNil(RunnerMessage.unpack([1, 0, 0, 0, 9, 0, 0, 0, 1]))
        XCTAssertNil(RunnerMessage.unpack([1, 0]))
        XCTAssertNil(RunnerMessage.unpack(RunnerMessage.pack(list) + [0]))
    }

    func testAnEventSurvivesTheTripWithItsRequestAndMessage() {
        let arena = CArena()
        var message = sio_message()
        message.struct_size = MemoryLayout<sio_message>.size
        message.event = arena.buf("chat")
        message.args_json = arena.buf(#"["hi",{"_placeholder":true,"num":0}]"#)
        let attachments = [arena.buf([0, 1, 2] as [UInt8])]
        message.attachments = arena.array(attachments)
        message.attachment_count = 1
        message.ack_id = 3
        var request = sio_request()
        request.struct_size = MemoryLayout<sio_request>.size
        request.path = arena.buf("/socket.io/")
        let headers = [sio_header(name: arena.buf("host"), value: arena.buf("example"))]
        request.headers = arena.array(headers)
        request.header_count = 1
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.socket_id = arena.buf("abc")
        event.nsp = arena.buf("/")
        event.request = arena.value(request)
        event.message = arena.value(message)

        let fields = EventFields.encode(event, handlers: [0, 2], request: true)
        let other = CArena()
        let requests = RequestCache()
        guard let decoded = EventFields.decode(RunnerMessage(kind: .event, fields: fields), kind: SIO_EVENT_MESSAGE, in: other, requests: requests) else { return XCTFail("not decoded") }
        XCTAssertEqual(decoded.handlers, [0, 2])
        XCTAssertEqual(decoded.socketID, "abc")
        XCTAssertEqual(decoded.event.request!.pointee.path.bytes, Array("/socket.io/".utf8))
        XCTAssertEqual(decoded.event.request!.pointee.header_count, 1)
        XCTAssertEqual(decoded.event.request!.pointee.headers[0].value.bytes, Array("example".utf8))
        let decodedMessage = decoded.event.message!.pointee
        XCTAssertEqual(decodedMessage.event.bytes, Array("chat".utf8))
        XCTAssertEqual(decodedMessage.ack_id, 3)
        XCTAssertEqual(decodedMessage.attachment_count, 1)
        XCTAssertEqual(decodedMessage.attachments[0].bytes, [0, 1, 2])
        XCTAssertNil(EventFields.decode(RunnerMessage(kind: .event, fields: Array(fields.dropLast())), kind: SIO_EVENT_MESSAGE, in: other, requests: requests))

        // Later events of the socket come without the request: the kept one serves them.
        let later = EventFields.encode(event, handlers: [1], request: false)
        XCTAssertLessThan(later.reduce(0) { $0 + $1.count }, fields.reduce(0) { $0 + $1.count })
        guard let again = EventFields.decode(RunnerMessage(kind: .event, fields: later), kind: SIO_EVENT_MESSAGE, in: CArena(), requests: requests) else { return XCTFail("not decoded") }
        XCTAssertEqual(again.event.request!.pointee.headers[0].name.bytes, Array("host".utf8))
        // Its last event brings the request and is not kept; after `forget` none is left.
        XCTAssertNotNil(EventFields.decode(RunnerMessage(kind: .event, fields: fields), kind: SIO_EVENT_FINISH, in: CArena(), requests: requests))
        requests.forget("abc")
        XCTAssertEqual(requests.count, 0)
        XCTAssertNil(EventFields.decode(RunnerMessage(kind: .event, fields: later), kind: SIO_EVENT_MESSAGE, in: CArena(), requests: requests), "no request, none kept")
    }

    func testABrokenRequestFieldMakesNoEvent() {
        let arena = CArena()
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.socket_id = arena.buf("abc")
        var fields = EventFields.encode(event, handlers: [0], request: false)
        for broken: [UInt8] in [[1], RunnerMessage.pack([[1], [2], [3]]), RunnerMessage.pack([[1], [2], [3], [4], [5]])] {
            fields[3] = broken
            XCTAssertNil(EventFields.decode(RunnerMessage(kind: .event, fields: fields), kind: SIO_EVENT_MESSAGE, in: arena, requests: RequestCache()))
        }
    }
}

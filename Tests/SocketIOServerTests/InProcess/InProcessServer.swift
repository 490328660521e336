import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SocketIOCodec
@testable import SocketIOServer

/// What the application saw, for assertions.
final class RecordingApplication: Application, Sendable {
    let events = NIOLockedValueBox<[String]>([])
    let sockets = NIOLockedValueBox<[Socket]>([])
    /// Emitted to each socket from `connect`, as the reference server's "auth" event.
    let greeting: String?
    /// The events answered `.later`: "connect", "subscribe", "message".
    let later = NIOLockedValueBox<Set<String>>([])

    init(greeting: String? = nil) {
        self.greeting = greeting
    }

    private func isLater(_ kind: String) -> Bool { later.withLockedValue { $0.contains(kind) } }

    func connect(_ socket: Socket, auth: JSONValue?) -> ConnectDecision {
        sockets.withLockedValue { $0.append(socket) }
        events.withLockedValue { $0.append("connect \(socket.namespace)") }
        if let greeting { socket.emit(greeting, [auth ?? [:]]) }
        return isLater("connect") ? .later : .accept
    }

    func message(_ socket: Socket, event: IncomingEvent) -> MessageDecision {
        events.withLockedValue { $0.append("message \(event.name) \(JSONValue.array(event.arguments).jsonText)") }
        if let id = event.ackID { socket.ack(id, event.arguments) }
        return isLater("message") ? .later : .handled
    }

    func subscribe(_ socket: Socket, channel: String) -> SubscribeDecision {
        events.withLockedValue { $0.append("subscribe \(channel)") }
        return isLater("subscribe") ? .later : .accept
    }

    func error(_ socket: Socket, error: SocketError) {
        events.withLockedValue { $0.append("error \(error)") }
    }

    func disconnect(_ socket: Socket, reason: DisconnectReason) {
        events.withLockedValue { $0.append("disconnect \(reason.rawValue)") }
    }

    func finish(_ socket: Socket) {
        events.withLockedValue { $0.append("finish") }
    }

    var recorded: [String] { events.withLockedValue { $0 } }
}

/// One connection to the server's real pipeline on an `EmbeddedChannel`: requests go in as
/// bytes, responses come out as bytes, and time moves only when the test moves it (the
/// `EmbeddedEventLoop` is the injectable clock of heartbeats and timeouts).
final class Connection {
    let channel: EmbeddedChannel
    var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

    init(context: ServerContext, loop: EmbeddedEventLoop) throws {
        channel = EmbeddedChannel(loop: loop)
        try Server.configureHTTP(channel: channel, context: context)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
    }

    /// Hands `text` to the pipeline and runs what it scheduled on the loop (hops between the
    /// connection and its session), without moving time.
    func send(_ text: String) throws {
        try sendBytes(Array(text.utf8))
    }

    func sendBytes(_ bytes: [UInt8]) throws {
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch is HTTPParserError {
            // The server closed mid-request (a refused body): the decoder reports the cut.
        }
        loop.run()
    }

    /// Everything written to the client so far.
    func received() throws -> [UInt8] {
        var bytes: [UInt8] = []
        loop.run()
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(var buffer) = data else { continue }
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        }
        return bytes
    }

    /// The HTTP responses written so far, as (status, body) pairs.
    func responses() throws -> [(status: Int, body: String)] {
        var text = String(decoding: try received(), as: UTF8.self)[...]
        var result: [(Int, String)] = []
        while let headEnd = text.range(of: "\r\n\r\n") {
            let head = text[..<headEnd.lowerBound]
            let status = Int(head.split(separator: " ")[1]) ?? 0
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyStart = headEnd.upperBound
            let bodyEnd = text.utf8.index(bodyStart, offsetBy: length, limitedBy: text.endIndex) ?? text.endIndex
            result.append((status, String(text[bodyStart..<bodyEnd])))
            text = text[bodyEnd...]
        }
        return result
    }

    func get(_ query: String, headers: [String] = []) throws {
        try send("GET /socket.io/?\(query) HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    func post(_ query: String, body: String) throws {
        try send("POST /socket.io/?\(query) HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    /// A masked client frame, as RFC 6455 requires of clients.
    func sendFrame(_ text: String, opcode: UInt8 = 0x1) throws {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var frame: [UInt8] = [0x80 | opcode]
        precondition(payload.count < 126)
        frame.append(0x80 | UInt8(payload.count))
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try sendBytes(frame)
    }
}

/// The head of a WebSocket upgrade request, RFC 6455's example key.
let upgradeHeaders = [
    "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
]

/// Server frames (unmasked, short) decoded to their text payloads; a close frame reads "<close>".
func textFrames(_ bytes: [UInt8]) -> [String] {
    var frames: [String] = []
    var index = 0
    while index + 2 <= bytes.count {
        let opcode = bytes[index] & 0x0F
        var length = Int(bytes[index + 1] & 0x7F)
        var start = index + 2
        if length == 126 {
            length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            start += 2
        }
        guard start + length <= bytes.count else { break }
        frames.append(opcode == 0x8 ? "<close>" : String(decoding: bytes[start..<(start + length)], as: UTF8.self))
        index = start + length
    }
    return frames
}

func makeContext(greeting: String? = nil, metrics: (any MetricsFactory)? = nil,
                 _ configure: (inout ServerConfiguration) -> Void = { _ in }) -> (ServerContext, RecordingApplication) {
    var configuration = ServerConfiguration()
    configuration.clientScriptPath = nil
    configure(&configuration)
    let application = RecordingApplication(greeting: greeting)
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    configuration.metrics = metrics != nil
    return (ServerContext(configuration: configuration, application: application, logger: logger,
                          metricsFactory: metrics ?? NOOPMetricsHandler.instance), application)
}

extension String {
    /// The `sid` of an Engine.IO open packet in a polling payload or frame.
    var openSID: String? {
        guard let start = range(of: #""sid":""#)?.upperBound, let end = self[start...].firstIndex(of: "\"") else { return nil }
        return String(self[start..<end])
    }
}

import NIOCore

/// One Socket.IO client over WebSocket, spoken by hand for speed: the HTTP upgrade, Engine.IO
/// open, Socket.IO CONNECT, an optional `__subscribe__`, then counting `message` events and
/// reading the send timestamp (`"t":NANOSECONDS`) inside each. With `upgradeSid` it is instead
/// the WebSocket half of a long-polling session's upgrade (`2probe`, `3probe`, `5`).
///
/// `@unchecked Sendable`: the load generator runs every client on its single event loop, and
/// async code reaches them only through `Harness.on`, which runs there.
final class RawWebSocketClient: ChannelInboundHandler, LoadClient, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase { case upgrading, probing, awaitingOpen, awaitingConnect, subscribing, ready, closed }

    private let host: String
    private let path: String
    private let channelName: String?
    private let stats: Stats
    private let onSettled: (Bool) -> Void
    private var settled = false
    private var buffer = ByteBuffer()
    private(set) var phase = Phase.upgrading
    private(set) var context: ChannelHandlerContext?
    var closeAfterConnect = false
    /// The polling session this connection upgrades.
    var upgradeSid: String?
    var isReady: Bool { phase == .ready }

    /// `onSettled(true)` once ready (or connected, with `closeAfterConnect`); `onSettled(false)`
    /// if it closes before.
    init(host: String, path: String, channel: String?, stats: Stats, onSettled: @escaping (Bool) -> Void) {
        self.host = host
        self.path = path
        self.channelName = channel
        self.stats = stats
        self.onSettled = onSettled
    }

    func start(_ connector: Connector) {
        connector.connect(self).whenFailure { _ in self.settle(false) }
    }

    func settle(_ success: Bool) {
        guard !settled else { return }
        settled = true
        if !success { stats.failed += 1 }
        onSettled(success)
    }

    /// Added to a connected channel: the request goes out now.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let session = upgradeSid.map { "&sid=\($0)" } ?? ""
        let request = "GET \(path)?EIO=4&transport=websocket\(session) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase == .ready { stats.disconnected += 1 }
        settle(false)
        phase = .closed
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if phase == .upgrading {
            buffer.writeBuffer(&incoming)
            guard let headLength = buffer.withUnsafeReadableBytes({ HTTPLink.headLength($0) }) else { return }
            let status = buffer.getString(at: buffer.readerIndex, length: 12) ?? ""
            buffer.moveReaderIndex(forwardBy: headLength)
            guard status.hasSuffix("101") else {
                phase = .closed
                context.close(promise: nil)
                return
            }
            if upgradeSid != nil {
                phase = .probing
                send("2probe", context: context)
            } else {
                phase = .awaitingOpen
            }
            incoming = buffer
            buffer = ByteBuffer()
        } else if buffer.readableBytes > 0 {
            buffer.writeBuffer(&incoming)
            incoming = buffer
            buffer = ByteBuffer()
        }
        // The hot path: message frames are counted straight from the bytes that arrived.
        while phase == .ready, let consumed = countMessages(in: incoming), consumed > 0 {
            incoming.moveReaderIndex(forwardBy: consumed)
        }
        while let (opcode, payload) = nextFrame(&incoming) {
            handle(opcode: opcode, payload: payload, context: context)
        }
        if incoming.readableBytes > 0 { buffer = incoming }
    }

    /// Counts the complete `message` frames at the start of `bytes`; returns how many bytes they
    /// took, or nil at the first frame that is anything else (or incomplete).
    private func countMessages(in bytes: ByteBuffer) -> Int? {
        bytes.withUnsafeReadableBytes { raw -> Int? in
            var offset = 0
            while raw.count - offset >= 2 {
                guard raw[offset] == 0x81 else { break }
                var length = Int(raw[offset + 1] & 0x7F)
                var header = 2
                if length == 126 {
                    guard raw.count - offset >= 4 else { break }
                    length = Int(raw[offset + 2]) << 8 | Int(raw[offset + 3])
                    header = 4
                } else if length == 127 {
                    break
                }
                guard raw.count - offset >= header + length, length >= 2,
                    raw[offset + header] == UInt8(ascii: "4"), raw[offset + header + 1] == UInt8(ascii: "2")
                else { break }
                let frame = UnsafeRawBufferPointer(rebasing: raw[(offset + header)..<(offset + header + length)])
                if let t = Self.timestamp(in: frame) { stats.record(sentAt: t) } else { stats.received += 1 }
                offset += header + length
            }
            return offset == 0 ? nil : offset
        }
    }

    /// One unmasked server frame, if complete.
    private func nextFrame(_ buffer: inout ByteBuffer) -> (UInt8, ByteBuffer)? {
        guard buffer.readableBytes >= 2, let b0 = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let b1 = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        var header = 2
        var length = Int(b1 & 0x7F)
        if length == 126 {
            guard let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            length = Int(l)
            header = 4
        } else if length == 127 {
            guard let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
            length = Int(l)
            header = 10
        }
        guard buffer.readableBytes >= header + length else { return nil }
        buffer.moveReaderIndex(forwardBy: header)
        let payload = buffer.readSlice(length: length)!
        return (b0 & 0x0F, payload)
    }

    private func handle(opcode: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard opcode == 1, let type = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else {
            if opcode == 8 { context.close(promise: nil) }
            return
        }
        switch (phase, type) {
        case (.probing, UInt8(ascii: "3")):
            send("5", context: context)
            phase = .closed
            settle(true)
            context.close(promise: nil)
        case (_, UInt8(ascii: "2")):
            send("3", context: context)
        case (.awaitingOpen, UInt8(ascii: "0")):
            phase = .awaitingConnect
            send("40", context: context)
        case (.awaitingConnect, UInt8(ascii: "4")):
            stats.connected += 1
            stats.handshakes += 1
            if closeAfterConnect {
                phase = .closed
                settle(true)
                context.close(promise: nil)
            } else if let channelName {
                phase = .subscribing
                send("420[\"__subscribe__\",\"\(channelName)\"]", context: context)
            } else {
                phase = .ready
                stats.ready += 1
                settle(true)
            }
        case (.subscribing, UInt8(ascii: "4")):
            phase = .ready
            stats.ready += 1
            settle(true)
        case (.ready, UInt8(ascii: "4")):
            if let t = payload.withUnsafeReadableBytes({ Self.timestamp(in: $0) }) { stats.record(sentAt: t) }
        default:
            break
        }
    }

    /// The digits after `"t":` in a message.
    static func timestamp(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        var index = 0
        let end = bytes.count - 4
        while index < end {
            if bytes[index] == 0x22, bytes[index + 1] == 0x74, bytes[index + 2] == 0x22, bytes[index + 3] == 0x3A {  // "t":
                var value: UInt64 = 0
                var digit = index + 4
                while digit < bytes.count, bytes[digit] >= 0x30, bytes[digit] <= 0x39 {
                    value = value * 10 + UInt64(bytes[digit] - 0x30)
                    digit += 1
                }
                return value
            }
            index += 1
        }
        return nil
    }

    /// Sends one text frame, masked with a zero key (the bytes stay as they are).
    func send(_ text: String, context: ChannelHandlerContext? = nil, flush: Bool = true) {
        guard let context = context ?? self.context else { return }
        var frame = context.channel.allocator.buffer(capacity: text.utf8.count + 14)
        Self.writeFrame(text.utf8, into: &frame)
        context.write(wrapOutboundOut(frame), promise: nil)
        if flush { context.flush() }
    }

    static func writeFrame(_ bytes: some Collection<UInt8>, into frame: inout ByteBuffer) {
        frame.writeInteger(UInt8(0x81))
        let count = bytes.count
        if count < 126 {
            frame.writeInteger(UInt8(0x80 | count))
        } else if count <= 65535 {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(count))
        }
        frame.writeInteger(UInt32(0))  // mask key
        frame.writeBytes(bytes)
    }

    func close() {
        phase = .closed
        context?.close(promise: nil)
    }
}

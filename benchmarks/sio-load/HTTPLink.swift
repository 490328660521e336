import NIOCore

/// One keep-alive HTTP/1.1 connection carrying one request at a time: the long-polling
/// transport's GETs and POSTs, spoken by hand (only `Content-Length` bodies, which is what
/// Engine.IO servers answer polls with).
final class HTTPLink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The body of a 200 answer, or nil for any other status or a closed connection.
    typealias Completion = (ByteBuffer?) -> Void

    private var buffer = ByteBuffer()
    private var pending: Completion?
    private var queued: [(ByteBuffer, Completion)] = []
    private(set) var context: ChannelHandlerContext?
    private var closed = false

    /// Added to a connected channel: queued requests go out now.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let waiting = queued
        queued = []
        for (request, completion) in waiting { send(request, completion) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        self.context = nil
        let waiting = (pending.map { [$0] } ?? []) + queued.map(\.1)
        pending = nil
        queued = []
        for completion in waiting { completion(nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Sends `request` once the connection is up and the previous answer is in.
    func send(_ request: ByteBuffer, _ completion: @escaping Completion) {
        guard !closed else { return completion(nil) }
        guard let context, pending == nil else {
            queued.append((request, completion))
            return
        }
        pending = completion
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let (status, body) = nextResponse() {
            guard let completion = pending else { return context.close(promise: nil) }
            pending = nil
            if !queued.isEmpty {
                let (request, next) = queued.removeFirst()
                send(request, next)
            }
            completion(status == 200 ? body : nil)
        }
    }

    /// One complete response from the buffer, if there is one.
    private func nextResponse() -> (Int, ByteBuffer)? {
        let found = buffer.withUnsafeReadableBytes { raw -> (status: Int, head: Int, length: Int)? in
            guard let head = Self.headLength(raw), head > 12 else { return nil }
            let status = (Int(raw[9]) - 48) * 100 + (Int(raw[10]) - 48) * 10 + (Int(raw[11]) - 48)
            return (status, head, Self.contentLength(UnsafeRawBufferPointer(rebasing: raw[..<head])))
        }
        guard let found, buffer.readableBytes >= found.head + found.length else { return nil }
        buffer.moveReaderIndex(forwardBy: found.head)
        let body = buffer.readSlice(length: found.length)!
        buffer.discardReadBytes()
        return (found.status, body)
    }

    /// Where the head ends (after its blank line), if it has. A plain loop: the generic
    /// `firstRange(of:)` took a sixth of the generator's time in the connect scenario.
    static func headLength(_ raw: UnsafeRawBufferPointer) -> Int? {
        guard raw.count >= 4 else { return nil }
        for index in 3..<raw.count where raw[index] == 0x0A && raw[index - 1] == 0x0D && raw[index - 2] == 0x0A && raw[index - 3] == 0x0D {
            return index + 1
        }
        return nil
    }

    /// The value of the `Content-Length` header (any case), 0 without one.
    private static func contentLength(_ head: UnsafeRawBufferPointer) -> Int {
        let name = Array("\r\ncontent-length:".utf8)
        var index = 0
        search: while index + name.count <= head.count {
            for offset in 0..<name.count where lowercased(head[index + offset]) != name[offset] {
                index += 1
                continue search
            }
            var value = 0
            var digit = index + name.count
            while digit < head.count, head[digit] == 0x20 { digit += 1 }
            while digit < head.count, head[digit] >= 0x30, head[digit] <= 0x39 {
                value = value * 10 + Int(head[digit] - 0x30)
                digit += 1
            }
            return value
        }
        return 0
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    func close() {
        closed = true
        context?.close(promise: nil)
    }

    static func get(_ target: String, host: String) -> ByteBuffer {
        ByteBuffer(string: "GET \(target) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
    }

    static func post(_ target: String, host: String, body: String) -> ByteBuffer {
        ByteBuffer(string: "POST \(target) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }
}

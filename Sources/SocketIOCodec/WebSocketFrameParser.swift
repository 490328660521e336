import NIOCore

/// Client-to-server WebSocket frames (RFC 6455), parsed without I/O: bytes go in, whole
/// messages and control frames come out.
///
/// Fragments are joined and payloads unmasked here, and a message is refused as soon as its
/// announced size passes the limit, before its bytes are buffered. One parser replaces NIO's
/// frame decoder, protocol-error handler and fragment aggregator: three handlers, their
/// contexts and buffers less for every connection, idle or not.
public struct WebSocketFrameParser {
    public enum Output: Equatable {
        case text(ByteBuffer)
        case binary(ByteBuffer)
        case ping(ByteBuffer)
        case pong
        /// The client closes, with its status code when it gave one.
        case close(code: UInt16?)
        /// The connection must be closed with this status code; nothing follows.
        case fail(code: UInt16)
    }

    /// RFC 6455 status codes the parser fails with.
    public static let protocolError: UInt16 = 1002
    public static let messageTooBig: UInt16 = 1009

    private var buffer = ByteBuffer()
    /// A fragmented message under way: its opcode and the payload so far.
    private var fragments: (opcode: UInt8, data: ByteBuffer)?
    private var failed = false
    private let maxMessageSize: Int

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    public mutating func append(_ bytes: inout ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
            bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
        } else {
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next complete output, or nil until more bytes arrive. Nil for good after a `.fail`.
    public mutating func next() -> Output? {
        while !failed {
            guard let frame = readFrame() else {
                // Everything read was parsed: let go of the read buffer, which `append` took as
                // it was. Held, it would keep the channel from reusing it for the next read
                // (NIO reuses only a buffer nobody else holds) and cost an allocation per read.
                if buffer.readableBytes == 0 { buffer = ByteBuffer() }
                return nil
            }
            switch frame {
            case .fail(let code):
                return fail(code)
            case .frame(let fin, let opcode, let payload):
                if let output = process(fin: fin, opcode: opcode, payload: payload) { return output }
            }
        }
        return nil
    }

    private mutating func fail(_ code: UInt16) -> Output {
        failed = true
        buffer = ByteBuffer()
        fragments = nil
        return .fail(code: code)
    }

    private mutating func process(fin: Bool, opcode: UInt8, payload: ByteBuffer) -> Output? {
        switch opcode {
        case 0x1, 0x2:
            guard fragments == nil else { return fail(Self.protocolError) }
            if fin { return opcode == 0x1 ? .text(payload) : .binary(payload) }
            fragments = (opcode, payload)
            return nil
        case 0x0:
            guard var message = fragments else { return fail(Self.protocolError) }
            fragments = nil
            var payload = payload
            message.data.writeBuffer(&payload)
            if fin { return message.opcode == 0x1 ? .text(message.data) : .binary(message.data) }
            fragments = message
            return nil
        case 0x8:
            guard payload.readableBytes != 1 else { return fail(Self.protocolError) }
            return .close(code: payload.getInteger(at: payload.readerIndex, as: UInt16.self))
        case 0x9:
            return .ping(payload)
        case 0xA:
            return .pong
        default:
            return fail(Self.protocolError)
        }
    }

    private enum Frame {
        case frame(fin: Bool, opcode: UInt8, payload: ByteBuffer)
        case fail(UInt16)
    }

    private mutating func readFrame() -> Frame? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        // No extension is ever negotiated, so the reserved bits stay 0; clients always mask.
        guard first & 0x70 == 0, second & 0x80 != 0 else { return .fail(Self.protocolError) }
        let fin = first & 0x80 != 0
        let opcode = first & 0x0F
        var length = Int(second & 0x7F)
        var header = 2
        if length == 126 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = Int(extended)
            header = 4
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            guard extended >> 63 == 0 else { return .fail(Self.protocolError) }
            guard extended <= UInt64(maxMessageSize) else { return .fail(Self.messageTooBig) }
            length = Int(extended)
            header = 10
        }
        if opcode & 0x08 != 0 {
            guard fin, length <= 125 else { return .fail(Self.protocolError) }
        } else if (fragments?.data.readableBytes ?? 0) + length > maxMessageSize {
            return .fail(Self.messageTooBig)
        }
        guard buffer.readableBytes >= header + 4 + length,
            let key = buffer.getInteger(at: start + header, as: UInt32.self)
        else { return nil }
        let payload = Self.unmasked(buffer, at: start + header + 4, length: length, key: key)
        buffer.moveReaderIndex(forwardBy: header + 4 + length)
        if buffer.readableBytes == 0 {
            // Not `clear()`: that keeps the storage, the last read's, for every idle connection.
            buffer = ByteBuffer()
        } else if buffer.readerIndex > 65_536 {
            buffer.discardReadBytes()
        }
        return .frame(fin: fin, opcode: opcode, payload: payload)
    }

    /// A copy of the payload with the mask removed, eight bytes at a time.
    static func unmasked(_ buffer: ByteBuffer, at offset: Int, length: Int, key: UInt32) -> ByteBuffer {
        var payload = ByteBuffer()
        guard length > 0 else { return payload }
        payload.reserveCapacity(length)
        // The key as it lies in memory, repeated: byte i of the payload is XORed with key byte i % 4.
        let keyBytes = UInt64(key.bigEndian)
        let wide = keyBytes | keyBytes << 32
        buffer.withUnsafeReadableBytes { raw in
            let source = UnsafeRawBufferPointer(rebasing: raw[(offset - buffer.readerIndex)...].prefix(length))
            payload.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
                var index = 0
                while index + 8 <= length {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ wide
                    out.storeBytes(of: word, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                while index < length {
                    out[index] = source[index] ^ UInt8(truncatingIfNeeded: wide >> (8 * UInt64(index & 3)))
                    index += 1
                }
                return length
            }
        }
        return payload
    }
}

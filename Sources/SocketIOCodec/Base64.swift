import NIOCore

/// Standard base64 (RFC 4648, padded), which Engine.IO uses for binary packets on long-polling.
enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let inverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    static func encode(_ input: ByteBufferView, into output: inout ByteBuffer) {
        var iterator = input.makeIterator()
        while let a = iterator.next() {
            let b = iterator.next()
            let c = iterator.next()
            let n = UInt32(a) << 16 | UInt32(b ?? 0) << 8 | UInt32(c ?? 0)
            output.writeInteger(alphabet[Int(n >> 18 & 63)])
            output.writeInteger(alphabet[Int(n >> 12 & 63)])
            output.writeInteger(b == nil ? UInt8(ascii: "=") : alphabet[Int(n >> 6 & 63)])
            output.writeInteger(c == nil ? UInt8(ascii: "=") : alphabet[Int(n & 63)])
        }
    }

    static func decode(_ input: ByteBufferView, allocator: ByteBufferAllocator) throws(CodecError) -> ByteBuffer {
        var output = allocator.buffer(capacity: input.count / 4 * 3)
        var quad: UInt32 = 0
        var filled = 0
        var padding = 0
        for byte in input {
            if byte == UInt8(ascii: "=") {
                padding += 1
                quad <<= 6
                filled += 1
            } else {
                guard padding == 0 else { throw .invalidBase64 }
                let value = inverse[Int(byte)]
                guard value != 0xFF else { throw .invalidBase64 }
                quad = quad << 6 | UInt32(value)
                filled += 1
            }
            if filled == 4 {
                output.writeInteger(UInt8(truncatingIfNeeded: quad >> 16))
                if padding < 2 { output.writeInteger(UInt8(truncatingIfNeeded: quad >> 8)) }
                if padding < 1 { output.writeInteger(UInt8(truncatingIfNeeded: quad)) }
                if padding > 2 { throw .invalidBase64 }
                quad = 0
                filled = 0
            }
        }
        guard filled == 0 else { throw .invalidBase64 }
        return output
    }
}

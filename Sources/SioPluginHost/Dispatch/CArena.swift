import CSioPlugin
import SocketIOCodec

/// Memory for the host-owned buffers of one event: everything a handler may read lives here
/// and is freed in one go when the handler returns (the "host-owned, event" lifetime of the ABI).
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit {
        for block in blocks { block.deallocate() }
    }

    func buf(_ string: String) -> sio_buf {
        var string = string
        return string.withUTF8 { buf(UnsafeRawBufferPointer($0)) }
    }

    func buf(_ bytes: some Collection<UInt8>) -> sio_buf {
        if let result = bytes.withContiguousStorageIfAvailable({ buf(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(bytes).withUnsafeBytes { buf($0) }
    }

    func buf(_ bytes: UnsafeRawBufferPointer) -> sio_buf {
        guard bytes.count > 0 else { return sio_buf(ptr: nil, len: 0) }
        let block = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + 1, alignment: 1)
        block.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        block.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)  // NUL, for C convenience
        blocks.append(block)
        return sio_buf(ptr: block.assumingMemoryBound(to: CChar.self), len: bytes.count)
    }

    func array<T>(_ values: [T]) -> UnsafePointer<T>? {
        guard !values.isEmpty else { return nil }
        let block = UnsafeMutablePointer<T>.allocate(capacity: values.count)
        block.initialize(from: values, count: values.count)
        blocks.append(UnsafeMutableRawPointer(block))
        return UnsafePointer(block)
    }

    func value<T>(_ value: T) -> UnsafePointer<T> {
        let block = UnsafeMutablePointer<T>.allocate(capacity: 1)
        block.initialize(to: value)
        blocks.append(UnsafeMutableRawPointer(block))
        return UnsafePointer(block)
    }
}

extension sio_buf {
    /// Copies the bytes; nil ptr with len 0 is the empty buffer.
    var bytes: [UInt8] {
        guard let ptr, len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: ptr, count: len))
    }

    /// The bytes where they are, valid while the plugin's buffer is: parsing from here spares a copy.
    var raw: UnsafeRawBufferPointer {
        guard let ptr, len > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: ptr, count: len)
    }

    var string: String? {
        guard let ptr, len > 0 else { return "" }
        return UTF8Text.string(UnsafeRawBufferPointer(start: ptr, count: len))
    }
}

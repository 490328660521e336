import CSioPlugin
import SocketIOCodec

/// Memory for the host-owned buffers of one event: everything a handler may read lives here
/// and is freed in one go when the handler returns (the "host-owned, event" lifetime of the ABI).
///
/// Allocation bumps through chunks: an event's dozen buffers and structs cost one `malloc`,
/// not one each. Everything stored here is a C value or bytes, so nothing is deinitialised.
final class CArena {
    private static let chunkSize = 1024
    private var first: UnsafeMutableRawPointer?
    private var more: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var left = 0

    deinit {
        first?.deallocate()
        for block in more { block.deallocate() }
    }

    /// Frees everything but the first chunk, which the next buffers reuse: for an arena that
    /// serves one event after another.
    func reset() {
        for block in more { block.deallocate() }
        more.removeAll(keepingCapacity: true)
        cursor = first
        left = first == nil ? 0 : Self.chunkSize
    }

    private func allocate(_ size: Int, alignment: Int) -> UnsafeMutableRawPointer {
        if let cursor {
            let aligned = cursor.alignedUp(toMultipleOf: alignment)
            let needed = (aligned - cursor) + size
            if needed <= left {
                self.cursor = aligned + size
                left -= needed
                return aligned
            }
        }
        if size > Self.chunkSize / 2 {
            let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: max(alignment, 16))
            more.append(block)
            return block
        }
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        if first == nil { first = chunk } else { more.append(chunk) }
        cursor = chunk + size
        left = Self.chunkSize - size
        return chunk
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
        let block = allocate(bytes.count + 1, alignment: 1)
        block.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        block.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)  // NUL, for C convenience
        return sio_buf(ptr: block.assumingMemoryBound(to: CChar.self), len: bytes.count)
    }

    func array<T>(_ values: [T]) -> UnsafePointer<T>? {
        guard !values.isEmpty else { return nil }
        let block = allocate(MemoryLayout<T>.stride * values.count, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: values.count)
        block.initialize(from: values, count: values.count)
        return UnsafePointer(block)
    }

    func value<T>(_ value: T) -> UnsafePointer<T> {
        let block = allocate(MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment).bindMemory(to: T.self, capacity: 1)
        block.initialize(to: value)
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

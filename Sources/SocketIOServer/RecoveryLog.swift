import NIOCore

/// What a recovery log keeps: a message that knows its offset, time and size, so that an entry
/// is the message alone (a reference for `OutboundMessage`).
protocol Recoverable {
    var offset: UInt64 { get }
    var madeAt: UInt64 { get }
    var byteCount: Int { get }
}

/// What one socket was sent lately: what a client that comes back within the recovery window is
/// sent again, after the last offset it saw.
///
/// Messages are shared between the recipients of a broadcast, so an entry costs its slot (one
/// reference); the byte limit counts each message whole, as if it were not shared (the bound
/// holds whatever the sharing). Pure: no I/O, no clock (callers pass the time).
struct RecoveryLog<Message: Recoverable> {
    private(set) var entries = CircularBuffer<Message>(initialCapacity: 4)
    private(set) var bytes = 0

    mutating func append(_ message: Message, maxBytes: Int, window: UInt64) {
        entries.append(message)
        bytes += message.byteCount
        evict(now: message.madeAt, maxBytes: maxBytes, window: window)
    }

    /// Drops what is older than `window` or past `maxBytes`, oldest first.
    mutating func evict(now: UInt64, maxBytes: Int, window: UInt64) {
        while let first = entries.first, bytes > maxBytes || (now > first.madeAt && now - first.madeAt > window) {
            bytes -= first.byteCount
            entries.removeFirst()
        }
    }

    /// What came after `offset`, in order; nil when `offset` is not (or no longer) here.
    func after(_ offset: UInt64) -> [Message]? {
        guard let index = entries.firstIndex(where: { $0.offset == offset }) else { return nil }
        return Array(entries[entries.index(after: index)...])
    }
}

extension OutboundMessage: Recoverable {
    var byteCount: Int { webSocketFrames.readableBytes }
}

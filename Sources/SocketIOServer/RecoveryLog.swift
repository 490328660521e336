import Atomics
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

/// `--recovery-window` and `--recovery-buffer`, and the offsets of one server.
final class RecoverySettings: Sendable {
    let window: Duration
    let windowNanoseconds: UInt64
    let maxBytes: Int
    /// Starts at a random point of its own (the top 20 bits): offsets of different servers (the
    /// nodes of a cluster, one server and its restart) do not meet, so an offset that came from
    /// elsewhere is unknown here, never mistaken for one of ours.
    private let counter = ManagedAtomic<UInt64>(UInt64.random(in: 1..<(1 << 20)) << 40)

    init(window: Duration, maxBytes: Int) {
        self.window = window
        let (seconds, attoseconds) = window.components
        self.windowNanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        self.maxBytes = maxBytes
    }

    /// A new offset: unique in this server's life (and, most likely, across servers), increasing.
    func nextOffset() -> UInt64 { counter.wrappingIncrementThenLoad(ordering: .relaxed) }

    /// The offset as the client sees it (the last argument of an event): `~` and base 36, so
    /// that the client script can tell it from an application's own last argument.
    static func text(_ offset: UInt64) -> String { "~" + String(offset, radix: 36) }

    static func parse(_ text: String) -> UInt64? {
        guard text.hasPrefix("~") else { return nil }
        return UInt64(text.dropFirst(), radix: 36)
    }

    /// Reasons a client did not choose: it may come back (socket.io's list).
    static func isRecoverable(_ reason: DisconnectReason) -> Bool {
        switch reason {
        case .transportClose, .transportError, .pingTimeout, .forcedClose: return true
        default: return false
        }
    }
}


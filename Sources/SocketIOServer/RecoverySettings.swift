import Atomics
import NIOCore

/// `--recovery-window` and `--recovery-buffer`, and the offsets of one server.
final class RecoverySettings: Sendable {
    let window: Duration
    let windowNanoseconds: UInt64
    let maxBytes: Int
    /// Starts at a random point of its own, between 2^30 and 2^31: offsets of different servers
    /// (the nodes of a cluster, one server and its restart) most likely do not meet, and an
    /// offset is six characters for its first billion messages — it rides in every event, and
    /// at a thousand recipients each byte of it is a thousand bytes to write.
    private let counter = ManagedAtomic<UInt64>(UInt64.random(in: (1 << 30)..<(1 << 31)))

    init(window: Duration, maxBytes: Int) {
        self.window = window
        let (seconds, attoseconds) = window.components
        self.windowNanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        self.maxBytes = maxBytes
    }

    /// A new offset: unique in this server's life (and, most likely, across servers), increasing.
    func nextOffset() -> UInt64 { counter.wrappingIncrementThenLoad(ordering: .relaxed) }

    /// The last offset taken: what a socket joining a channel now has seen of it.
    var lastOffset: UInt64 { counter.load(ordering: .relaxed) }

    /// The offset as the client sees it (the last argument of an event): `~` and base 36, so
    /// that the client script can tell it from an application's own last argument.
    static func text(_ offset: UInt64) -> String { "~" + String(offset, radix: 36) }

    static func parse(_ text: String) -> UInt64? {
        guard text.hasPrefix("~") else { return nil }
        return UInt64(text.dropFirst(), radix: 36)
    }

    /// An encoded event packet (`...]`) with `offset` as its last argument: what each node does
    /// to a broadcast from another, whose packet comes without one. Nil for what is not an array.
    static func appending(_ offset: UInt64, to packet: ByteBuffer) -> ByteBuffer? {
        let view = packet.readableBytesView
        guard view.count >= 2, view.last == UInt8(ascii: "]") else { return nil }
        let suffix = "\"" + text(offset) + "\"]"
        var result = ByteBuffer()
        result.reserveCapacity(view.count + suffix.utf8.count + 1)
        result.writeBytes(view.dropLast())
        if view[view.index(view.endIndex, offsetBy: -2)] != UInt8(ascii: "[") { result.writeInteger(UInt8(ascii: ",")) }
        result.writeString(suffix)
        return result
    }

    /// The packet without the `offset` that `appending` put there: what goes to another node.
    static func removing(_ offset: UInt64, from packet: ByteBuffer) -> ByteBuffer? {
        let suffix = Array(("\"" + text(offset) + "\"]").utf8)
        let view = packet.readableBytesView
        guard view.count > suffix.count + 1, view.suffix(suffix.count).elementsEqual(suffix) else { return nil }
        var head = view.dropLast(suffix.count)
        if head.last == UInt8(ascii: ",") { head = head.dropLast() }
        var result = ByteBuffer()
        result.reserveCapacity(head.count + 1)
        result.writeBytes(head)
        result.writeInteger(UInt8(ascii: "]"))
        return result
    }

    /// Reasons a client did not choose: it may come back (socket.io's list).
    static func isRecoverable(_ reason: DisconnectReason) -> Bool {
        switch reason {
        case .transportClose, .transportError, .pingTimeout, .forcedClose: return true
        default: return false
        }
    }
}


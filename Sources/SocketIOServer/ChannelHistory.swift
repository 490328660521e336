import NIOConcurrencyHelpers
import NIOCore

/// What was broadcast to one channel lately, kept once for all its subscribers (connection state
/// recovery): a recipient of a channel broadcast keeps nothing of its own, so a delivery costs
/// what it costs without recovery, whatever the fan-out.
///
/// Offsets are taken under the lock, so the history is in offset order, and what a socket
/// missed in the channel is what came after the client's offset (and after the socket joined),
/// but what it sent itself. Bounded as a socket's log is (`--recovery-buffer`, the window).
///
/// `@unchecked Sendable`: broadcasts on every loop append to it; its log is touched under
/// `lock` only.
final class ChannelHistory: @unchecked Sendable {
    private let lock = NIOLock()
    private let storage: RecoveryLog<OutboundMessage>

    init(_ settings: RecoverySettings) {
        storage = RecoveryLog(maxBytes: settings.maxBytes, window: settings.windowNanoseconds)
    }

    private func withLog<T>(_ body: (RecoveryLog<OutboundMessage>) -> T) -> T {
        lock.withLock { body(storage) }
    }

    /// Takes an offset and keeps the message `make` builds with it, in one step: the next
    /// append has a larger offset.
    func append(_ recovery: RecoverySettings, _ make: (UInt64) -> OutboundMessage) -> OutboundMessage {
        withLog { log in
            let message = make(recovery.nextOffset())
            log.append(message)
            return message
        }
    }

    /// What is kept that went to `socket` after it joined at `joinedAt`, in offset order, and
    /// the largest offset dropped: a client whose offset is below it missed something gone.
    func sent(since joinedAt: UInt64, to socket: String) -> (messages: [OutboundMessage], evictedUpTo: UInt64) {
        withLog { log in (log.messages(after: joinedAt).filter { $0.excluded != socket }, log.evictedUpTo) }
    }

    /// Nothing kept younger than `deadline` (uptime nanoseconds): the history may go.
    func isStale(before deadline: UInt64) -> Bool {
        withLog { $0.newestMadeAt < deadline }
    }
}

import NIOCore
import SocketIOCodec

/// What a socket keeps while the application finishes one of its events later: which event,
/// and the client's packets that arrived since, to be handled in order once it is done.
///
/// Boxed and made only when an event is deferred, so that a socket that never waits pays one
/// pointer for it. Touched on the socket's event loop only.
final class EventHold {
    /// The event the application has not finished; nil while the packets held behind it are
    /// being handled.
    enum Waiting {
        case connect
        case subscribe(channel: String, ackID: Int?)
        case message
    }

    /// Packets past it are dropped with `SocketError.heldOverflow`: a client cannot make the
    /// server keep more than this for it while a handler waits on a database.
    static let limit = 1_024

    var waiting: Waiting?
    private(set) var packets: [(packet: SocketIOPacket, attachments: [ByteBuffer])] = []
    private var next = 0
    private(set) var overflowed = false

    init(_ waiting: Waiting) {
        self.waiting = waiting
    }

    /// False when the packet was dropped; `reportOverflow` is true the first time that happens.
    func hold(_ packet: SocketIOPacket, attachments: [ByteBuffer]) -> (held: Bool, reportOverflow: Bool) {
        guard packets.count - next < Self.limit else {
            defer { overflowed = true }
            return (false, !overflowed)
        }
        packets.append((packet, attachments))
        return (true, false)
    }

    /// The oldest held packet, while nothing is being waited for.
    func release() -> (packet: SocketIOPacket, attachments: [ByteBuffer])? {
        guard waiting == nil, next < packets.count else { return nil }
        let packet = packets[next]
        next += 1
        if next == packets.count {
            packets.removeAll()
            next = 0
        }
        return packet
    }

    var isEmpty: Bool { next == packets.count }
}

import NIOCore

/// Messages on their way to the other nodes, and how they are cut into notifications.
///
/// The publisher takes the next batch whenever its previous NOTIFY is done, so at a low rate a
/// message goes alone at once, and at a high rate everything that queued during one round trip
/// goes in the next notification: batching without a timer, latency never waits for a batch to
/// fill. What does not fit a NOTIFY (PostgreSQL refuses payloads of 8,000 bytes) or is binary
/// goes through the payload table, in order with the rest.
///
/// Pure: no I/O, no lock (the owner holds one).
struct PublishQueue {
    enum Batch: Equatable {
        /// A notification's payload: the header (`header(_:)`), messages.
        case notify(String)
        /// Messages for a row of the payload table; the notification carries its id.
        case table(ByteBuffer)
    }

    /// The most bytes of one notification, header included.
    let notifyLimit: Int
    /// The most bytes of messages batched into one table row (one larger message goes alone).
    let rowLimit: Int
    /// Past this many queued bytes, new messages are dropped (and counted): a cluster that cannot
    /// keep up does not grow a node's memory without bound.
    let maxQueuedBytes: Int
    let node: String
    /// Numbers the notifications: PostgreSQL delivers one of two identical payloads sent in one
    /// transaction (and the publisher sends several per transaction), so no two may be equal.
    private(set) var sequence: UInt64 = 0
    /// The longest header: node, space, 20 digits, newline.
    private var headerRoom: Int { node.utf8.count + 22 }

    private var pending = CircularBuffer<(bytes: ByteBuffer, isText: Bool)>()
    private(set) var queuedBytes = 0
    /// Messages dropped since the last `takeDropped`.
    private var dropped = 0
    /// Messages handed out in batches, ever: with the batches counted by the publisher, how
    /// full they are.
    private(set) var taken = 0

    init(node: String, notifyLimit: Int = 7_900, rowLimit: Int = 1 << 20, maxQueuedBytes: Int = 64 << 20) {
        self.node = node
        self.notifyLimit = notifyLimit
        self.rowLimit = rowLimit
        self.maxQueuedBytes = maxQueuedBytes
    }

    var isEmpty: Bool { pending.isEmpty }

    /// Queues one encoded message; false when it was dropped for want of room.
    @discardableResult
    mutating func append(_ bytes: ByteBuffer, isText: Bool) -> Bool {
        guard queuedBytes + bytes.readableBytes <= maxQueuedBytes else {
            dropped += 1
            return false
        }
        pending.append((bytes, isText))
        queuedBytes += bytes.readableBytes
        return true
    }

    /// A notification's first line, `NODE SEQUENCE`, with the next number.
    mutating func header() -> String {
        sequence += 1
        return "\(node) \(sequence)\n"
    }

    /// The next batch: as many messages as fit, in order.
    mutating func next() -> Batch? {
        guard let first = pending.first else { return nil }
        let room = notifyLimit - headerRoom
        if first.isText, first.bytes.readableBytes <= room {
            var payload = ByteBuffer()
            payload.reserveCapacity(notifyLimit)
            payload.writeString(header())
            while let message = pending.first, message.isText, payload.readableBytes + message.bytes.readableBytes <= notifyLimit {
                take(into: &payload)
            }
            return .notify(String(buffer: payload))
        }
        var row = ByteBuffer()
        take(into: &row)
        // What follows goes along while it would not fit a notification anyway: the row is one
        // round trip whatever it holds.
        while let message = pending.first, !message.isText || message.bytes.readableBytes > room,
              row.readableBytes + message.bytes.readableBytes <= rowLimit {
            take(into: &row)
        }
        return .table(row)
    }

    private mutating func take(into buffer: inout ByteBuffer) {
        let message = pending.removeFirst()
        taken += 1
        queuedBytes -= message.bytes.readableBytes
        buffer.writeImmutableBuffer(message.bytes)
    }

    /// Drops everything queued (the cluster is unreachable): how many messages that was, with
    /// those refused for want of room since the last call.
    mutating func discardAll() -> Int {
        let count = pending.count + takeDropped()
        pending.removeAll()
        queuedBytes = 0
        return count
    }

    mutating func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }
}

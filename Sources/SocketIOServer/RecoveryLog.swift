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
///
/// An append is on the path of every delivery, on a socket whose slots went cold since its last
/// message: it touches the newest slot only. The oldest is read when something is to go — past
/// `maxBytes`, or older than the window by an eighth of it — and then the log drops, in one go,
/// down to 7/8 of `maxBytes` and to the window: one cold read for many appends, not one each.
/// A ring of its own (power-of-two capacity, no copy-on-write): no uniqueness check per append.
class RecoveryLog<Message: Recoverable> {
    let maxBytes: Int
    let window: UInt64
    /// Allocated on the first append: a socket that is only in channels keeps nothing here.
    private var storage: UnsafeMutablePointer<Message>
    private var capacity = 0
    private var head = 0
    private(set) var count = 0
    private(set) var bytes = 0
    /// When the oldest entry was made: kept here, so that an append does not read its slot.
    private var oldestMadeAt: UInt64 = 0
    private(set) var newestMadeAt: UInt64 = 0
    /// The largest offset dropped: a client whose offset is below it missed something no
    /// longer here.
    private(set) var evictedUpTo: UInt64 = 0

    init(maxBytes: Int, window: UInt64) {
        self.maxBytes = maxBytes
        self.window = window
        storage = UnsafeMutablePointer(bitPattern: MemoryLayout<Message>.alignment)!
    }

    deinit {
        for index in 0..<count { (storage + ((head + index) & (capacity - 1))).deinitialize(count: 1) }
        if capacity > 0 { storage.deallocate() }
    }

    func append(_ message: Message) {
        if count == capacity { grow() }
        (storage + ((head + count) & (capacity - 1))).initialize(to: message)
        if count == 0 { oldestMadeAt = message.madeAt }
        count += 1
        bytes += message.byteCount
        let now = message.madeAt
        newestMadeAt = max(newestMadeAt, now)
        if bytes > maxBytes || (now > oldestMadeAt && now - oldestMadeAt > window + window / 8) {
            evict(now: now)
        }
    }

    /// Drops, oldest first, what is older than the window and what is past 7/8 of `maxBytes`.
    func evict(now: UInt64) {
        let byteTarget = maxBytes - maxBytes / 8
        while count > 0 {
            let slot = storage + head
            let madeAt = slot.pointee.madeAt
            guard bytes > byteTarget || (now > madeAt && now - madeAt > window) else { break }
            bytes -= slot.pointee.byteCount
            evictedUpTo = max(evictedUpTo, slot.pointee.offset)
            slot.deinitialize(count: 1)
            head = (head + 1) & (capacity - 1)
            count -= 1
        }
        oldestMadeAt = count > 0 ? storage[head].madeAt : 0
    }

    private func grow() {
        let larger = UnsafeMutablePointer<Message>.allocate(capacity: max(4, capacity * 2))
        if capacity > 0 {
            let firstPart = capacity - head
            larger.moveInitialize(from: storage + head, count: min(count, firstPart))
            if count > firstPart { (larger + firstPart).moveInitialize(from: storage, count: count - firstPart) }
            storage.deallocate()
        }
        storage = larger
        capacity = max(4, capacity * 2)
        head = 0
    }

    /// Everything kept, oldest first.
    var messages: [Message] {
        (0..<count).map { storage[(head + $0) & (capacity - 1)] }
    }

    /// What came after `offset` in the order kept; nil when `offset` is not (or no longer) here.
    func after(_ offset: UInt64) -> [Message]? {
        guard let index = (0..<count).first(where: { storage[(head + $0) & (capacity - 1)].offset == offset }) else { return nil }
        return ((index + 1)..<count).map { storage[(head + $0) & (capacity - 1)] }
    }

    func contains(_ offset: UInt64) -> Bool {
        (0..<count).contains { storage[(head + $0) & (capacity - 1)].offset == offset }
    }

    /// What is here with an offset above `offset`, in the order kept.
    func messages(after offset: UInt64) -> [Message] {
        (0..<count).compactMap { index in
            let message = storage[(head + index) & (capacity - 1)]
            return message.offset > offset ? message : nil
        }
    }
}

extension OutboundMessage: Recoverable {
    var byteCount: Int { webSocketFrames.readableBytes }
}

/// One message between the server and a plugin runner (isolated mode): the whole wire format,
/// with no I/O, so that both sides and the tests share it.
///
/// Every message has the same shape — a kind, an id, a number and a list of byte strings —
/// which keeps the codec small and every message's meaning in `Kind`'s documentation. On the
/// wire: u32 length of what follows, u8 kind, u64 id, i64 number, u32 field count, then each
/// field as u32 length and bytes; integers little-endian.
struct RunnerMessage: Equatable, Sendable {
    enum Kind: UInt8, Sendable {
        // Server → runner.
        /// fields: [private copy path, previous state, --pending-timeout in ms,
        /// --handler-timeout in ms, optionally "prepare"]. Answered by `loaded` or `refused`;
        /// with "prepare" (a reload) by `prepared` or `refused`, then `start` follows.
        case load = 1
        /// id: event id; number: `sio_event_kind`; fields: `EventFields`. Answered by `done`.
        case event = 2
        /// id: the runner's request id; number: status; fields: [value] (context_get).
        case reply = 3
        /// id: callback id; number: status; fields: [socket id, nsp, args json, attachments…].
        case ackReply = 4
        /// Answered by `retired`, after which the runner exits.
        case retire = 5
        /// id: an event whose socket is gone: the plugin's tickets for it are void.
        case cancel = 6
        /// fields: [socket id]: the socket finished; the runner drops the request it kept
        /// (`RequestCache`), in order behind the socket's events it holds.
        case forget = 7
        /// fields: [state]: the prepared build starts (`adopt`, or `init` for ABI 1.0) with
        /// the state its predecessor handed over. Answered by `loaded` or `refused`.
        case start = 8

        // Runner → server.
        /// fields: [name, version, abi "major.minor", then per handler "kind:pattern"] where an
        /// absent pattern is written "kind" alone.
        case loaded = 20
        /// fields: [reason].
        case refused = 21
        /// id: event id; number: status (SIO_OK, SIO_REFUSE, SIO_FAIL); fields: [reason, ack json].
        case done = 22
        /// id: event id of the handler's socket (0 out of band); number: `RunnerCall` raw value
        /// with the request id in the high 32 bits when an answer is awaited; fields: the
        /// call's arguments.
        case call = 23
        /// fields: [state].
        case retired = 24
        /// number: the `sio_event_kind` of a handler running past --handler-timeout; the server
        /// kills the runner. Timed in the runner: time queued or deferred is not running.
        case hung = 25
        /// The build is mapped and described; number: 1 when it has an `adopt` and its `init`
        /// ran (fields as `loaded`), 0 when `init` waits for `start` (fields: name, version, abi).
        case prepared = 26
        /// id: an event the runner holds behind its socket's deferred one, or its plugin
        /// deferred: answered out of order, so the server keeps it apart (`InFlightTable`).
        case parked = 27
    }

    var kind: Kind
    var id: UInt64 = 0
    var number: Int64 = 0
    /// The fields as on the wire — each a u32 length and its bytes — and how many: a decoded
    /// message is one copy of its bytes, not an array per field (whose allocations and
    /// releases were a tenth of a runner's work per event).
    private var wire: [UInt8] = []
    private(set) var fieldCount = 0

    init(kind: Kind, id: UInt64 = 0, number: Int64 = 0, fields: [[UInt8]] = []) {
        self.kind = kind
        self.id = id
        self.number = number
        fieldCount = fields.count
        wire.reserveCapacity(fields.reduce(0) { $0 + 4 + $1.count })
        for field in fields {
            Self.append(UInt32(field.count), to: &wire)
            wire += field
        }
    }

    private init(kind: Kind, id: UInt64, number: Int64, wire: [UInt8], fieldCount: Int) {
        self.kind = kind
        self.id = id
        self.number = number
        self.wire = wire
        self.fieldCount = fieldCount
    }

    /// Field `index`, empty past the last: where it lies, without a copy.
    func field(_ index: Int) -> ArraySlice<UInt8> {
        guard index >= 0, index < fieldCount else { return [] }
        var at = 0
        for _ in 0..<index { at += 4 + Self.length(in: wire, at: at) }
        return wire[(at + 4)..<(at + 4 + Self.length(in: wire, at: at))]
    }

    /// Every field where it lies, in one walk (`field` walks from the first each time).
    var fieldSlices: [ArraySlice<UInt8>] {
        var slices: [ArraySlice<UInt8>] = []
        slices.reserveCapacity(fieldCount)
        var at = 0
        for _ in 0..<fieldCount {
            let length = Self.length(in: wire, at: at)
            slices.append(wire[(at + 4)..<(at + 4 + length)])
            at += 4 + length
        }
        return slices
    }

    func text(_ index: Int) -> String {
        String(decoding: field(index), as: UTF8.self)
    }

    /// Every field as an array of its own, for the paths that are not per event.
    var fields: [[UInt8]] {
        (0..<fieldCount).map { Array(field($0)) }
    }

    private static func length(in bytes: [UInt8], at index: Int) -> Int {
        Int(bytes[index]) | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2]) << 16 | Int(bytes[index + 3]) << 24
    }

    /// A message longer than this is a broken peer, not a large event (payloads are bounded
    /// by --max-payload long before).
    static let maximumLength = 256 << 20

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        encode(into: &bytes)
        return bytes
    }

    /// Appends the message to `bytes`: an outbox takes several without a copy each.
    func encode(into bytes: inout [UInt8]) {
        let wire = wire
        Self.write(kind: kind, id: id, number: number, count: fieldCount, length: wire.count, into: &bytes) { to in
            wire.withUnsafeBytes { if $0.count > 0 { to.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        }
    }

    /// A field written from where it lies: an event is encoded without an array per field.
    enum Field {
        case bytes([UInt8])
        /// Valid for the call to `encode` (an event's arena).
        case raw(UnsafeRawBufferPointer)

        var count: Int {
            switch self {
            case .bytes(let bytes): return bytes.count
            case .raw(let raw): return raw.count
            }
        }

        var bytes: [UInt8] {
            switch self {
            case .bytes(let bytes): return bytes
            case .raw(let raw): return Array(raw)
            }
        }
    }

    /// Appends the message these make to `bytes`.
    static func encode(kind: Kind, id: UInt64, number: Int64, fields: [Field], into bytes: inout [UInt8]) {
        let length = fields.reduce(0) { $0 + 4 + $1.count }
        write(kind: kind, id: id, number: number, count: fields.count, length: length, into: &bytes) { to in
            var at = to
            for field in fields {
                at.storeBytes(of: UInt32(field.count).littleEndian, as: UInt32.self)
                at += 4
                switch field {
                case .bytes(let field): field.withUnsafeBytes { if $0.count > 0 { at.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
                case .raw(let raw): if raw.count > 0 { at.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
                }
                at += field.count
            }
        }
    }

    /// The whole message in one growth of `bytes` and plain stores: appending it piece by piece
    /// went through generic `append(contentsOf:)` calls, a third of an event's encoding.
    /// `fields` writes the `length` bytes of the fields section where it is given.
    private static func write(kind: Kind, id: UInt64, number: Int64, count: Int, length: Int, into bytes: inout [UInt8],
                              fields: (UnsafeMutableRawPointer) -> Void) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 25 + length))
        bytes.withUnsafeMutableBytes { out in
            var at = start
            func put<T: FixedWidthInteger>(_ value: T) {
                out.storeBytes(of: value.littleEndian, toByteOffset: at, as: T.self)
                at += MemoryLayout<T>.size
            }
            put(UInt32(21 + length))
            put(kind.rawValue)
            put(id)
            put(UInt64(bitPattern: number))
            put(UInt32(count))
            fields(out.baseAddress! + at)
        }
    }

    enum DecodeError: Error, Equatable {
        case tooLong(Int)
        case malformed(String)
    }

    /// Takes one message off the front of `buffer`; nil when it has not all arrived yet.
    static func decode(from buffer: inout [UInt8], start: inout Int) throws(DecodeError) -> RunnerMessage? {
        var reader = Reader(bytes: buffer, index: start)
        guard let length = reader.u32() else { return nil }
        guard Int(length) <= maximumLength else { throw .tooLong(Int(length)) }
        guard buffer.count - reader.index >= Int(length) else { return nil }
        let end = reader.index + Int(length)
        guard let rawKind = reader.u8(), let kind = Kind(rawValue: rawKind) else { throw .malformed("unknown kind") }
        guard let id = reader.u64(), let number = reader.u64(), let count = reader.u32() else { throw .malformed("short header") }
        let fieldsStart = reader.index
        for _ in 0..<count {
            guard let size = reader.u32(), reader.index + Int(size) <= end else { throw .malformed("field past the end") }
            reader.index += Int(size)
        }
        guard reader.index == end else { throw .malformed("bytes after the last field") }
        let message = RunnerMessage(kind: kind, id: id, number: Int64(bitPattern: number), wire: Array(buffer[fieldsStart..<end]),
                                    fieldCount: Int(count))
        start = end
        if start > 65_536, start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        return message
    }

    private struct Reader {
        let bytes: [UInt8]
        var index: Int

        mutating func u8() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func u32() -> UInt32? {
            guard bytes.count - index >= 4 else { return nil }
            var value: UInt32 = 0
            for offset in 0..<4 { value |= UInt32(bytes[index + offset]) << (8 * offset) }
            index += 4
            return value
        }

        mutating func u64() -> UInt64? {
            guard bytes.count - index >= 8 else { return nil }
            var value: UInt64 = 0
            for offset in 0..<8 { value |= UInt64(bytes[index + offset]) << (8 * offset) }
            index += 8
            return value
        }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes += $0 }
    }

    /// A list of byte strings inside one field (headers, attachments).
    static func pack(_ list: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        append(UInt32(list.count), to: &bytes)
        for item in list {
            append(UInt32(item.count), to: &bytes)
            bytes += item
        }
        return bytes
    }

    static func unpack(_ bytes: [UInt8]) -> [[UInt8]]? {
        var reader = Reader(bytes: bytes, index: 0)
        guard let count = reader.u32() else { return nil }
        var list: [[UInt8]] = []
        for _ in 0..<count {
            guard let size = reader.u32(), reader.index + Int(size) <= bytes.count else { return nil }
            list.append(Array(bytes[reader.index..<(reader.index + Int(size))]))
            reader.index += Int(size)
        }
        return reader.index == bytes.count ? list : nil
    }
}

/// The host functions a runner forwards, by number (`RunnerMessage.Kind.call`).
enum RunnerCall: Int64, Sendable {
    // During an event; fields as the C function's buffers, in order.
    case send = 1, broadcast, broadcastChannel, sendAndBroadcast, sendAndBroadcastChannel
    /// [event, args json, attachments (packed)]
    case emit
    /// [ack id (decimal), args json, attachments (packed)]
    case ack
    case subscribe, unsubscribe, disconnect
    case contextSet, contextGet, contextDelete
    /// [channel, event, args json, attachments (packed), flags (decimal)]
    case emitTo
    /// [callback id (decimal), event, args json, attachments (packed), timeout ms (decimal)]
    case emitWithAck
    // Any thread.
    case oobBroadcast = 40, oobBroadcastChannel, oobSend, oobEmit, oobEmitToSocket
    /// [level (decimal), message]
    case log
    /// [value]
    case presenceSet = 20
    /// [channel] → the JSON list
    case presenceList
    /// [namespace, channel] → the count (decimal)
    case oobPresenceCount = 50
    /// [namespace, socket id, channel]
    case oobSocketJoin, oobSocketLeave
    /// [namespace, socket id]
    case oobSocketDisconnect
}

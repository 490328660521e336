import NIOCore
import SocketIOServer

/// One message between nodes. `ClusterMessage` and `PresenceChange` come from the server; the
/// rest is how nodes keep track of each other.
enum WireMessage: Equatable, Sendable {
    case message(ClusterMessage)
    case presence(PresenceChange)
    /// "I am alive": sent every heartbeat interval.
    case heartbeat
    /// A node (re)joined the cluster: everyone answers with their members.
    case hello
    /// Asks `node` for its members (a node heard from before its hello was).
    case snapshotRequest(node: String)
    /// The sender's members follow: forget what you knew of it.
    case snapshotBegin
    case snapshot(NamespaceMembers)
    /// The sender leaves the cluster (graceful shutdown): forget its sockets now.
    case bye
    /// The rest of the batch is in the payload table, row `id`.
    case reference(Int64)
    /// For one node only (connection state recovery): the others skip it.
    indirect case direct(node: String, WireMessage)

    /// Whether it may ride in a NOTIFY, whose payload is text: binary attachments go by table.
    var isText: Bool {
        switch self {
        case .message(.broadcast(_, _, _, _, let attachments, _)), .message(.toSocket(_, _, _, let attachments, _)):
            return attachments.isEmpty
        case .message(.recoveryAnswer(_, let state?)):
            return state.missed.allSatisfy(\.attachments.isEmpty)
        case .direct(_, let message):
            return message.isText
        default:
            return true
        }
    }
}

/// The encoding of `WireMessage`s: a kind byte, then fields as `length:bytes` (netstrings
/// without the comma), so that no field is escaped and a reader never scans a payload. A
/// notification is `NODE SEQUENCE` `\n` then messages; a table row holds messages alone.
///
/// Pure: no I/O. Decoding trusts nothing — a peer, or whoever else can NOTIFY the channel, may
/// send anything — and answers a malformed batch with an error, never a trap.
enum ClusterWire {
    struct DecodeError: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    // MARK: Encoding

    static func encode(_ message: WireMessage, into buffer: inout ByteBuffer) {
        switch message {
        case .message(.broadcast(let namespace, let channels, let excluding, let packet, let attachments, let id)):
            buffer.writeInteger(UInt8(ascii: "B"))
            field(namespace, &buffer)
            count(channels.count, &buffer)
            for channel in channels { field(channel, &buffer) }
            field(excluding ?? "", &buffer)
            field(packet, &buffer)
            count(attachments.count, &buffer)
            for attachment in attachments { field(attachment, &buffer) }
            unsigned(id, &buffer)
        case .message(.toSocket(let namespace, let socket, let packet, let attachments, let id)):
            buffer.writeInteger(UInt8(ascii: "T"))
            field(namespace, &buffer)
            field(socket, &buffer)
            field(packet, &buffer)
            count(attachments.count, &buffer)
            for attachment in attachments { field(attachment, &buffer) }
            unsigned(id, &buffer)
        case .message(.recoveryClaim(let namespace, let socket, let pid, let offset)):
            buffer.writeInteger(UInt8(ascii: "K"))
            field(namespace, &buffer)
            field(socket, &buffer)
            field(pid, &buffer)
            field(offset, &buffer)
        case .message(.recoveryAnswer(let pid, let state)):
            buffer.writeInteger(UInt8(ascii: "W"))
            field(pid, &buffer)
            guard let state else {
                buffer.writeInteger(UInt8(ascii: "-"))
                return
            }
            buffer.writeInteger(UInt8(ascii: "+"))
            count(state.channels.count, &buffer)
            for channel in state.channels { field(channel, &buffer) }
            optional(state.value, &buffer)
            count(state.missed.count, &buffer)
            for missed in state.missed {
                field(missed.packet, &buffer)
                count(missed.attachments.count, &buffer)
                for attachment in missed.attachments { field(attachment, &buffer) }
                field(missed.tag.node, &buffer)
                unsigned(missed.tag.id, &buffer)
            }
            // Grouped by node: a socket's log names a few nodes many times.
            let byNode = Dictionary(grouping: state.seen, by: \.node)
            count(byNode.count, &buffer)
            for node in byNode.keys.sorted() {
                field(node, &buffer)
                count(byNode[node]!.count, &buffer)
                for tag in byNode[node]! { unsigned(tag.id, &buffer) }
            }
        case .direct(let node, let message):
            buffer.writeInteger(UInt8(ascii: "@"))
            field(node, &buffer)
            encode(message, into: &buffer)
        case .message(.operation(let namespace, let socket, let operation)):
            buffer.writeInteger(UInt8(ascii: "O"))
            field(namespace, &buffer)
            field(socket, &buffer)
            switch operation {
            case .join(let channel): field("j", &buffer); field(channel, &buffer)
            case .leave(let channel): field("l", &buffer); field(channel, &buffer)
            case .disconnect: field("d", &buffer); field("", &buffer)
            }
        case .presence(.connected(let namespace, let socket)):
            buffer.writeInteger(UInt8(ascii: "C"))
            field(namespace, &buffer)
            field(socket, &buffer)
        case .presence(.disconnected(let namespace, let socket)):
            buffer.writeInteger(UInt8(ascii: "D"))
            field(namespace, &buffer)
            field(socket, &buffer)
        case .presence(.joined(let namespace, let socket, let channel)):
            buffer.writeInteger(UInt8(ascii: "J"))
            field(namespace, &buffer)
            field(socket, &buffer)
            field(channel, &buffer)
        case .presence(.left(let namespace, let socket, let channel)):
            buffer.writeInteger(UInt8(ascii: "L"))
            field(namespace, &buffer)
            field(socket, &buffer)
            field(channel, &buffer)
        case .presence(.value(let namespace, let socket, let value)):
            buffer.writeInteger(UInt8(ascii: "V"))
            field(namespace, &buffer)
            field(socket, &buffer)
            optional(value, &buffer)
        case .presence(.away(let namespace, let socket, let pid)):
            buffer.writeInteger(UInt8(ascii: "A"))
            field(namespace, &buffer)
            field(socket, &buffer)
            optional(pid, &buffer)
        case .heartbeat:
            buffer.writeInteger(UInt8(ascii: "H"))
        case .hello:
            buffer.writeInteger(UInt8(ascii: "S"))
        case .snapshotRequest(let node):
            buffer.writeInteger(UInt8(ascii: "Q"))
            field(node, &buffer)
        case .snapshotBegin:
            buffer.writeInteger(UInt8(ascii: "Z"))
        case .snapshot(let members):
            buffer.writeInteger(UInt8(ascii: "N"))
            field(members.namespace, &buffer)
            count(members.members.count, &buffer)
            for member in members.members {
                field(member.id, &buffer)
                optional(member.value, &buffer)
                optional(member.pid, &buffer)
                count(member.channels.count, &buffer)
                for channel in member.channels { field(channel, &buffer) }
            }
        case .bye:
            buffer.writeInteger(UInt8(ascii: "X"))
        case .reference(let id):
            buffer.writeInteger(UInt8(ascii: "R"))
            count(Int(id), &buffer)
        }
    }

    private static func unsigned(_ value: UInt64, _ buffer: inout ByteBuffer) {
        buffer.writeString(String(value))
        buffer.writeInteger(UInt8(ascii: ":"))
    }

    private static func count(_ value: Int, _ buffer: inout ByteBuffer) {
        buffer.writeString(String(value))
        buffer.writeInteger(UInt8(ascii: ":"))
    }

    private static func field(_ text: String, _ buffer: inout ByteBuffer) {
        count(text.utf8.count, &buffer)
        buffer.writeString(text)
    }

    private static func field(_ bytes: ByteBuffer, _ buffer: inout ByteBuffer) {
        count(bytes.readableBytes, &buffer)
        buffer.writeImmutableBuffer(bytes)
    }

    /// `-` for nil, else the field: a value may be empty and still be set.
    private static func optional(_ text: String?, _ buffer: inout ByteBuffer) {
        if let text {
            field(text, &buffer)
        } else {
            buffer.writeInteger(UInt8(ascii: "-"))
        }
    }

    // MARK: Decoding

    /// The messages of a batch, in order.
    static func decode(_ buffer: ByteBuffer) throws(DecodeError) -> [WireMessage] {
        var reader = Reader(buffer: buffer)
        var messages: [WireMessage] = []
        while reader.buffer.readableBytes > 0 {
            messages.append(try reader.message())
        }
        return messages
    }

    /// A notification: the sending node and its number for it, then its messages.
    static func decodeNotification(_ payload: String) throws(DecodeError) -> (node: String, sequence: UInt64, messages: [WireMessage]) {
        var buffer = ByteBuffer(string: payload)
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
              let header = buffer.readString(length: newline - buffer.readerIndex) else {
            throw DecodeError(description: "no header")
        }
        let parts = header.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let sequence = UInt64(parts[1]) else {
            throw DecodeError(description: "bad header")
        }
        buffer.moveReaderIndex(forwardBy: 1)
        return (String(parts[0]), sequence, try decode(buffer))
    }

    private struct Reader {
        var buffer: ByteBuffer
        /// Fields, counts and lists are bounded by the bytes that are there; this bounds the
        /// digits of a length.
        static let maxDigits = 10

        mutating func message() throws(DecodeError) -> WireMessage {
            guard let kind = buffer.readInteger(as: UInt8.self) else { throw DecodeError(description: "truncated") }
            switch kind {
            case UInt8(ascii: "B"):
                let namespace = try string()
                var channels: [String] = []
                for _ in 0..<(try listCount()) { channels.append(try string()) }
                let excluding = try string()
                let packet = try bytes()
                var attachments: [ByteBuffer] = []
                for _ in 0..<(try listCount()) { attachments.append(try bytes()) }
                return .message(.broadcast(namespace: namespace, channels: channels, excluding: excluding.isEmpty ? nil : excluding,
                                           packet: packet, attachments: attachments, id: try unsigned()))
            case UInt8(ascii: "T"):
                let namespace = try string()
                let socket = try string()
                let packet = try bytes()
                var attachments: [ByteBuffer] = []
                for _ in 0..<(try listCount()) { attachments.append(try bytes()) }
                return .message(.toSocket(namespace: namespace, socket: socket, packet: packet, attachments: attachments,
                                          id: try unsigned()))
            case UInt8(ascii: "K"):
                return .message(.recoveryClaim(namespace: try string(), socket: try string(), pid: try string(), offset: try string()))
            case UInt8(ascii: "W"):
                return .message(.recoveryAnswer(pid: try string(), try recoveredSocket()))
            case UInt8(ascii: "@"):
                let node = try string()
                let inner = try message()
                guard case .message = inner else { throw DecodeError(description: "only a server message goes to one node") }
                return .direct(node: node, inner)
            case UInt8(ascii: "O"):
                let namespace = try string()
                let socket = try string()
                let operation: SocketOperation
                switch (try string(), try string()) {
                case ("j", let channel) where !channel.isEmpty: operation = .join(channel)
                case ("l", let channel) where !channel.isEmpty: operation = .leave(channel)
                case ("d", _): operation = .disconnect
                default: throw DecodeError(description: "unknown operation")
                }
                return .message(.operation(namespace: namespace, socket: socket, operation))
            case UInt8(ascii: "C"):
                return .presence(.connected(namespace: try string(), socket: try string()))
            case UInt8(ascii: "D"):
                return .presence(.disconnected(namespace: try string(), socket: try string()))
            case UInt8(ascii: "J"):
                return .presence(.joined(namespace: try string(), socket: try string(), channel: try string()))
            case UInt8(ascii: "L"):
                return .presence(.left(namespace: try string(), socket: try string(), channel: try string()))
            case UInt8(ascii: "V"):
                return .presence(.value(namespace: try string(), socket: try string(), try optionalString()))
            case UInt8(ascii: "A"):
                return .presence(.away(namespace: try string(), socket: try string(), pid: try optionalString()))
            case UInt8(ascii: "H"):
                return .heartbeat
            case UInt8(ascii: "S"):
                return .hello
            case UInt8(ascii: "Q"):
                return .snapshotRequest(node: try string())
            case UInt8(ascii: "Z"):
                return .snapshotBegin
            case UInt8(ascii: "N"):
                let namespace = try string()
                var members: [NamespaceMembers.Member] = []
                for _ in 0..<(try listCount()) {
                    let id = try string()
                    let value = try optionalString()
                    let pid = try optionalString()
                    var channels: [String] = []
                    for _ in 0..<(try listCount()) { channels.append(try string()) }
                    members.append(.init(id: id, channels: channels, value: value, pid: pid))
                }
                return .snapshot(NamespaceMembers(namespace: namespace, members: members))
            case UInt8(ascii: "X"):
                return .bye
            case UInt8(ascii: "R"):
                return .reference(Int64(try number()))
            default:
                throw DecodeError(description: "unknown message kind \(kind)")
            }
        }

        mutating func number() throws(DecodeError) -> Int {
            var value = 0
            var digits = 0
            while let byte = buffer.readInteger(as: UInt8.self) {
                if byte == UInt8(ascii: ":") {
                    guard digits > 0 else { break }
                    return value
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < Self.maxDigits else { break }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            }
            throw DecodeError(description: "bad length")
        }

        mutating func unsigned() throws(DecodeError) -> UInt64 {
            var value: UInt64 = 0
            var digits = 0
            while let byte = buffer.readInteger(as: UInt8.self) {
                if byte == UInt8(ascii: ":") {
                    guard digits > 0 else { break }
                    return value
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
                let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { break }
                value = sum
                digits += 1
            }
            throw DecodeError(description: "bad number")
        }

        mutating func recoveredSocket() throws(DecodeError) -> RecoveredSocket? {
            switch buffer.readInteger(as: UInt8.self) {
            case UInt8(ascii: "-"): return nil
            case UInt8(ascii: "+"): break
            default: throw DecodeError(description: "bad answer")
            }
            var channels: [String] = []
            for _ in 0..<(try listCount()) { channels.append(try string()) }
            let value = try optionalString()
            var missed: [RecoveredSocket.Missed] = []
            for _ in 0..<(try listCount()) {
                let packet = try bytes()
                var attachments: [ByteBuffer] = []
                for _ in 0..<(try listCount()) { attachments.append(try bytes()) }
                missed.append(.init(packet: packet, attachments: attachments, tag: MessageTag(node: try string(), id: try unsigned())))
            }
            var seen: [MessageTag] = []
            for _ in 0..<(try listCount()) {
                let node = try string()
                for _ in 0..<(try listCount()) { seen.append(MessageTag(node: node, id: try unsigned())) }
            }
            return RecoveredSocket(channels: channels, value: value, missed: missed, seen: seen)
        }

        /// A count of list items: each item takes at least two bytes, so a count larger than
        /// what is left is a lie, refused before anything is reserved for it.
        mutating func listCount() throws(DecodeError) -> Int {
            let count = try number()
            guard count <= buffer.readableBytes else { throw DecodeError(description: "bad count") }
            return count
        }

        mutating func bytes() throws(DecodeError) -> ByteBuffer {
            let length = try number()
            guard let slice = buffer.readSlice(length: length) else { throw DecodeError(description: "truncated field") }
            return slice
        }

        mutating func string() throws(DecodeError) -> String {
            let slice = try bytes()
            guard let text = (try? slice.getUTF8ValidatedString(at: slice.readerIndex, length: slice.readableBytes)) ?? nil else {
                throw DecodeError(description: "invalid UTF-8")
            }
            return text
        }

        mutating func optionalString() throws(DecodeError) -> String? {
            if buffer.readableBytesView.first == UInt8(ascii: "-") {
                buffer.moveReaderIndex(forwardBy: 1)
                return nil
            }
            return try string()
        }
    }
}

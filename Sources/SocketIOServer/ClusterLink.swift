import NIOCore

/// The other processes of a cluster, as one server sees them (`sio serve --cluster`).
///
/// The server stays a single process that knows no database: it hands the link whatever may
/// concern sockets elsewhere and asks it who is where. `presenceChanged` is called inside the
/// lock of the namespace that changed, so the link queues changes in the order they happened,
/// and a snapshot taken under the same lock (`ClusterEndpoint.withMembers`) is never overtaken
/// by a change older than itself.
public protocol ClusterLink: AnyObject, Sendable {
    /// This node's id in the cluster: what other nodes call it in `MessageTag`s.
    var nodeID: String { get }
    /// Called once, by the server it serves, before the server accepts a connection.
    func attach(_ endpoint: ClusterEndpoint)
    /// Sends to every other node, in call order. Never blocks; while the cluster is unreachable
    /// the message is dropped (and counted).
    func publish(_ message: ClusterMessage)
    /// Sends to one other node (connection state recovery asks the node that has a socket).
    func send(_ message: ClusterMessage, to node: String)
    /// A local socket connected, left, joined, changed its presence value.
    func presenceChanged(_ change: PresenceChange)
    /// The sockets of other nodes in `namespace` (in `channel`, when given).
    func remoteMembers(namespace: String, channel: String?) -> [PresenceMember]
    /// The channels of other nodes in `namespace`, with how many of their sockets are in each.
    func remoteChannelCounts(namespace: String) -> [String: Int]
    /// Whether another node has this socket.
    func hasRemoteSocket(_ id: String, namespace: String) -> Bool
    /// The socket of another node that is away (its transport lost, recoverable there) with
    /// this private id.
    func awaySocket(pid: String) -> AwaySocket?
}

/// A socket of another node whose client may come back here (connection state recovery).
public struct AwaySocket: Sendable, Equatable {
    public var node: String
    public var namespace: String
    public var id: String
    public var channels: [String]

    public init(node: String, namespace: String, id: String, channels: [String]) {
        self.node = node
        self.namespace = namespace
        self.id = id
        self.channels = channels
    }
}

/// A message's name across the cluster: the node that sent it and its recovery offset there.
/// A node that recovers a socket of another tells by it what that node sent the socket already.
public struct MessageTag: Hashable, Sendable {
    public var node: String
    public var id: UInt64

    public init(node: String, id: UInt64) {
        self.node = node
        self.id = id
    }
}

/// What the node that had a socket hands to the node its client came back to.
public struct RecoveredSocket: Sendable, Equatable {
    /// One message the client did not get: the packet as it goes to the client, without the
    /// old node's offset (the new node adds its own).
    public struct Missed: Sendable, Equatable {
        public var packet: ByteBuffer
        public var attachments: [ByteBuffer]
        public var tag: MessageTag

        public init(packet: ByteBuffer, attachments: [ByteBuffer], tag: MessageTag) {
            self.packet = packet
            self.attachments = attachments
            self.tag = tag
        }
    }

    public var channels: [String]
    public var value: String?
    /// In order.
    public var missed: [Missed]
    /// Every message the old node still kept for the socket, missed or not: those of them that
    /// reached the new node too (it holds the socket's channels while it asks) are dropped there.
    public var seen: [MessageTag]

    public init(channels: [String], value: String?, missed: [Missed], seen: [MessageTag]) {
        self.channels = channels
        self.value = value
        self.missed = missed
        self.seen = seen
    }
}

/// What nodes send each other about sockets.
public enum ClusterMessage: Sendable, Equatable {
    /// A Socket.IO packet (encoded, as it goes to the client) for every socket of the namespace
    /// (`channels` empty) or for the subscribers of any of `channels`, but `excluding`.
    /// `id` is the sender's recovery offset for it (0: recovery is off there); the packet has
    /// no offset: each node adds its own.
    case broadcast(namespace: String, channels: [String], excluding: String?, packet: ByteBuffer, attachments: [ByteBuffer],
                   id: UInt64)
    /// A packet for one socket, wherever it is.
    case toSocket(namespace: String, socket: String, packet: ByteBuffer, attachments: [ByteBuffer], id: UInt64)
    /// socket.io's `socketsJoin`, `socketsLeave`, `disconnectSockets`, for one socket by id.
    case operation(namespace: String, socket: String, SocketOperation)
    /// A client came back to the sender with the private id of a socket away on the receiver,
    /// and the last offset it saw there (empty: none).
    case recoveryClaim(namespace: String, socket: String, pid: String, offset: String)
    /// The receiver's claim for `pid`, answered: nil when the socket cannot be recovered.
    case recoveryAnswer(pid: String, RecoveredSocket?)
}

public enum SocketOperation: Sendable, Equatable {
    case join(String)
    case leave(String)
    case disconnect
}

/// One change of who is where, as a node tells the others.
public enum PresenceChange: Sendable, Equatable {
    case connected(namespace: String, socket: String)
    case disconnected(namespace: String, socket: String)
    case joined(namespace: String, socket: String, channel: String)
    case left(namespace: String, socket: String, channel: String)
    /// The plugin-set presence value; nil clears it.
    case value(namespace: String, socket: String, String?)
    /// The socket's transport is lost and its client may come back with `pid` (nil: it is
    /// back, or no longer recoverable).
    case away(namespace: String, socket: String, pid: String?)
}

/// One socket in the presence listing: where it is and what its plugin said about it.
public struct PresenceMember: Sendable, Equatable {
    public var id: String
    public var namespace: String
    /// The node that holds it; nil for this process.
    public var node: String?
    public var value: String?

    public init(id: String, namespace: String, node: String?, value: String?) {
        self.id = id
        self.namespace = namespace
        self.node = node
        self.value = value
    }
}

/// Every socket of one namespace, with its channels and value: what a node tells a newcomer.
public struct NamespaceMembers: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var id: String
        public var channels: [String]
        public var value: String?
        /// The private id of a socket away (see `PresenceChange.away`).
        public var pid: String?

        public init(id: String, channels: [String], value: String?, pid: String? = nil) {
            self.id = id
            self.channels = channels
            self.value = value
            self.pid = pid
        }
    }

    public var namespace: String
    public var members: [Member]

    public init(namespace: String, members: [Member]) {
        self.namespace = namespace
        self.members = members
    }
}

/// The server as its cluster link sees it: where messages from other nodes are delivered.
public final class ClusterEndpoint: Sendable {
    let context: ServerContext

    init(context: ServerContext) {
        self.context = context
    }

    /// Carries out a message from `node` on this node's sockets. Any thread.
    public func deliver(_ message: ClusterMessage, from node: String) {
        context.deliverFromCluster(message, from: node)
    }

    /// Each namespace's members, read and handed to `body` under the namespace's lock: what
    /// `body` queues goes before any later change of that namespace.
    public func withMembers(_ body: (NamespaceMembers) -> Void) {
        for name in context.namespaces.keys.sorted() {
            context.namespaces[name]!.withMembers(body)
        }
    }
}

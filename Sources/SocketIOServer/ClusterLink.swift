import NIOCore

/// The other processes of a cluster, as one server sees them (`sio serve --cluster`).
///
/// The server stays a single process that knows no database: it hands the link whatever may
/// concern sockets elsewhere and asks it who is where. `presenceChanged` is called inside the
/// lock of the namespace that changed, so the link queues changes in the order they happened,
/// and a snapshot taken under the same lock (`ClusterEndpoint.withMembers`) is never overtaken
/// by a change older than itself.
public protocol ClusterLink: AnyObject, Sendable {
    /// Called once, by the server it serves, before the server accepts a connection.
    func attach(_ endpoint: ClusterEndpoint)
    /// Sends to every other node, in call order. Never blocks; while the cluster is unreachable
    /// the message is dropped (and counted).
    func publish(_ message: ClusterMessage)
    /// A local socket connected, left, joined, changed its presence value.
    func presenceChanged(_ change: PresenceChange)
    /// The sockets of other nodes in `namespace` (in `channel`, when given).
    func remoteMembers(namespace: String, channel: String?) -> [PresenceMember]
    /// The channels of other nodes in `namespace`, with how many of their sockets are in each.
    func remoteChannelCounts(namespace: String) -> [String: Int]
    /// Whether another node has this socket.
    func hasRemoteSocket(_ id: String, namespace: String) -> Bool
}

/// What nodes send each other about sockets.
public enum ClusterMessage: Sendable, Equatable {
    /// A Socket.IO packet (encoded, as it goes to the client) for every socket of the namespace
    /// (`channels` empty) or for the subscribers of any of `channels`, but `excluding`.
    case broadcast(namespace: String, channels: [String], excluding: String?, packet: ByteBuffer, attachments: [ByteBuffer])
    /// A packet for one socket, wherever it is.
    case toSocket(namespace: String, socket: String, packet: ByteBuffer, attachments: [ByteBuffer])
    /// socket.io's `socketsJoin`, `socketsLeave`, `disconnectSockets`, for one socket by id.
    case operation(namespace: String, socket: String, SocketOperation)
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

        public init(id: String, channels: [String], value: String?) {
            self.id = id
            self.channels = channels
            self.value = value
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

    /// Carries out a message from another node on this node's sockets. Any thread.
    public func deliver(_ message: ClusterMessage) {
        context.deliverFromCluster(message)
    }

    /// Each namespace's members, read and handed to `body` under the namespace's lock: what
    /// `body` queues goes before any later change of that namespace.
    public func withMembers(_ body: (NamespaceMembers) -> Void) {
        for name in context.namespaces.keys.sorted() {
            context.namespaces[name]!.withMembers(body)
        }
    }
}

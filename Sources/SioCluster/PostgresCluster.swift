import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import ServiceLifecycle
import SocketIOServer

/// This node's link to the others, through one PostgreSQL database (`sio serve --cluster`).
///
/// Two connections: one LISTENs (and fetches table rows), one publishes; messages from the
/// server are queued (`PublishQueue`) and sent by one task, in order, batched. Nodes heartbeat;
/// what they say of their sockets builds `RemotePresence`. PostgreSQL going away costs only
/// cross-node traffic: the node serves its own clients, drops what it would have sent (counted,
/// logged when the link is back), and reconnects with back-off; then it says hello and every
/// node sends it its members again.
///
/// Runs as a `Service` placed before the server in the group, so that it stops after it: the
/// server's last disconnects go out, then the node says goodbye.
public final class PostgresCluster: ClusterLink, Service, Sendable {
    /// This node's id in the cluster: random, new at every start.
    public let nodeID: String
    let configuration: ClusterConfiguration
    let logger: Logger

    struct State {
        var queue: PublishQueue
        var presence = RemotePresence()
        var connected = false
        var stopping = false
        var endpoint: ClusterEndpoint?
        /// Wakes the publisher of the current connection.
        var doorbell: AsyncStream<Void>.Continuation?
        /// Messages for other nodes that never left this one: the link was down or full.
        var dropped = 0
        /// The link was up once: a later connection is a recovery.
        var wasUp = false
        /// The current outage was logged.
        var outageLogged = false
        /// Traffic, ever: notifications and table rows sent, messages received from other nodes.
        var notifications = 0
        var rows = 0
        var received = 0
    }

    let state: NIOLockedValueBox<State>

    public init(configuration: ClusterConfiguration, logger: Logger) {
        let bytes = (0..<8).map { _ in UInt8.random(in: 0...255) }
        self.nodeID = bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node"] = "\(nodeID)"
        self.logger = logger
        self.state = NIOLockedValueBox(State(queue: PublishQueue(node: nodeID)))
    }

    // MARK: ClusterLink

    public func attach(_ endpoint: ClusterEndpoint) {
        state.withLockedValue { $0.endpoint = endpoint }
    }

    public func publish(_ message: ClusterMessage) {
        enqueue(.message(message), always: false)
    }

    public func send(_ message: ClusterMessage, to node: String) {
        enqueue(.direct(node: node, .message(message)), always: false)
    }

    public func awaySocket(pid: String) -> AwaySocket? {
        state.withLockedValue { $0.presence.awaySocket(pid: pid) }
    }

    public func presenceChanged(_ change: PresenceChange) {
        enqueue(.presence(change), always: false)
    }

    public func remoteMembers(namespace: String, channel: String?) -> [PresenceMember] {
        state.withLockedValue { $0.presence.members(namespace: namespace, channel: channel) }
    }

    public func remoteChannelCounts(namespace: String) -> [String: Int] {
        state.withLockedValue { $0.presence.channelCounts(namespace: namespace) }
    }

    public func hasRemoteSocket(_ id: String, namespace: String) -> Bool {
        state.withLockedValue { $0.presence.hasSocket(id, namespace: namespace) }
    }

    /// What an operator sees of the cluster (`sio stats`).
    public var status: ClusterStatus {
        state.withLockedValue {
            ClusterStatus(node: nodeID, connected: $0.connected, peers: $0.presence.nodeIDs,
                          remoteSockets: $0.presence.socketCount, dropped: $0.dropped, messagesSent: $0.queue.taken,
                          notificationsSent: $0.notifications, rowsSent: $0.rows, messagesReceived: $0.received)
        }
    }

    /// Queues a message for the other nodes. Sends and presence changes are skipped while no
    /// other node is known (a newcomer gets a snapshot) and dropped while the link is down;
    /// `always` is for what keeps the cluster together (hello, heartbeats, snapshots).
    func enqueue(_ message: WireMessage, always: Bool) {
        let ring = state.withLockedValue { state -> AsyncStream<Void>.Continuation? in
            guard state.connected else {
                if case .message = message { state.dropped += 1 }
                return nil
            }
            guard always || !state.presence.isAlone else { return nil }
            var buffer = ByteBuffer()
            ClusterWire.encode(message, into: &buffer)
            guard state.queue.append(buffer, isText: message.isText) else {
                state.dropped += 1
                return nil
            }
            return state.doorbell
        }
        ring?.yield()
    }

    /// This node's members, after a `snapshotBegin`; each namespace is queued under its lock.
    func enqueueSnapshot() {
        guard let endpoint = state.withLockedValue({ $0.endpoint }) else { return }
        enqueue(.snapshotBegin, always: true)
        endpoint.withMembers { members in enqueue(.snapshot(members), always: true) }
    }

    // MARK: Service

    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.serve()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Says goodbye and ends the session once what was queued is sent.
    func stop() {
        let ring = state.withLockedValue { state -> AsyncStream<Void>.Continuation? in
            state.stopping = true
            return state.doorbell
        }
        enqueue(.bye, always: true)
        ring?.yield()
        ring?.finish()
    }

    private var isStopping: Bool { state.withLockedValue { $0.stopping } }

    /// Connects, serves until the link fails, waits, again; until stopped.
    private func serve() async {
        var delay = configuration.firstReconnectDelay
        while !isStopping, !Task.isCancelled {
            do {
                try await session()
            } catch {
                if isStopping || Task.isCancelled { break }
                let first = state.withLockedValue { state in
                    defer { state.outageLogged = true }
                    return !state.outageLogged
                }
                if first {
                    logger.error("cluster: PostgreSQL unreachable; serving this node's clients only, retrying",
                                 metadata: ["error": "\(String(reflecting: error))"])
                }
            }
            let wasConnected = state.withLockedValue { $0.connected }
            markDown()
            if isStopping { break }
            if wasConnected { delay = configuration.firstReconnectDelay }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, configuration.longestReconnectDelay)
        }
        markDown()
    }

    /// The link is up (again): say so, once.
    private func cameUp() {
        let (dropped, recovery) = state.withLockedValue { state in
            defer {
                state.dropped = 0
                state.wasUp = true
                state.outageLogged = false
            }
            return (state.dropped, state.wasUp)
        }
        if recovery {
            logger.notice("cluster: PostgreSQL reachable again; cross-node delivery resumes", metadata: ["dropped": "\(dropped)"])
        } else {
            logger.info("cluster: joined", metadata: ["channel": "\(configuration.channel)", "database": "\(configuration.database)"])
        }
    }

    private func markDown() {
        state.withLockedValue { state in
            state.connected = false
            state.dropped += state.queue.discardAll()
            state.doorbell?.finish()
            state.doorbell = nil
        }
    }

    /// One connection's life: LISTEN, hello, then receive, publish and heartbeat until one fails
    /// or the node stops.
    private func session() async throws {
        let listener = try await connect()
        defer { Task { try? await listener.close() } }
        let publisher = try await connect()
        defer { Task { try? await publisher.close() } }
        try await createTable(publisher)
        try await listener.listen(on: configuration.channel) { notifications in
            let (bell, ringing) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            state.withLockedValue { state in
                state.connected = true
                state.doorbell = ringing
            }
            cameUp()
            enqueue(.hello, always: true)
            enqueueSnapshot()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.publishLoop(publisher, bell: bell) }
                group.addTask { try await self.heartbeatLoop(publisher) }
                group.addTask {
                    for try await notification in notifications {
                        await self.receive(notification.payload, fetcher: listener)
                    }
                    throw ClusterLinkLost()
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    private struct ClusterLinkLost: Error {}

    private func connect() async throws -> PostgresConnection {
        var config: PostgresConnection.Configuration
        if let path = configuration.unixSocketPath {
            config = .init(unixSocketPath: path, username: configuration.user, password: configuration.password,
                           database: configuration.database)
        } else {
            config = .init(host: configuration.host, port: configuration.port, username: configuration.user,
                           password: configuration.password, database: configuration.database, tls: .disable)
        }
        config.options.connectTimeout = .seconds(5)
        var quiet = logger
        quiet.logLevel = .critical
        return try await PostgresConnection.connect(configuration: config, id: 1, logger: quiet)
    }

    /// The payload table; nodes starting together may race to create it.
    private func createTable(_ connection: PostgresConnection) async throws {
        let table = configuration.payloadTable
        let create: PostgresQuery = """
            CREATE TABLE IF NOT EXISTS \(unescaped: table) (id bigserial PRIMARY KEY, \
            created_at timestamptz NOT NULL DEFAULT now(), data bytea NOT NULL)
            """
        do {
            try await connection.query(create, logger: logger)
        } catch {
            try await Task.sleep(for: .milliseconds(50))
            try await connection.query(create, logger: logger)
        }
    }
}

/// The cluster as `sio stats` shows it.
public struct ClusterStatus: Sendable, Codable, Equatable {
    public var node: String
    public var connected: Bool
    public var peers: [String]
    public var remoteSockets: Int
    /// Messages for other nodes dropped since the link last came back.
    public var dropped: Int
    /// Since the start: messages sent, in how many notifications and table rows, and messages
    /// received from other nodes.
    public var messagesSent: Int
    public var notificationsSent: Int
    public var rowsSent: Int
    public var messagesReceived: Int
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

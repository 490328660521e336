import Atomics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import SocketIOCodec

/// The Socket.IO server: binds, serves until graceful shutdown, then finishes every socket.
///
/// A `Service`, so that `sio` (and tests) run it in a `ServiceGroup` that turns SIGINT/SIGTERM
/// into an orderly stop.
public final class Server: Service, Sendable {
    private let context: ServerContext
    private let group: MultiThreadedEventLoopGroup
    private let boundAddress: EventLoopPromise<SocketAddress>

    /// - Parameter cluster: the other nodes (`sio serve --cluster`): sends reach their sockets
    ///   too, and presence covers them. Nil: this process is the whole server.
    public init(configuration: ServerConfiguration, application: Application, logger: Logger = Logger(label: "sio"),
                cluster: (any ClusterLink)? = nil) {
        self.context = ServerContext(configuration: configuration, application: application, logger: logger, cluster: cluster)
        cluster?.attach(ClusterEndpoint(context: context))
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        self.boundAddress = group.next().makePromise()
    }

    /// The address the server listens on, once it does (port 0 resolves here).
    public var localAddress: SocketAddress {
        get async throws { try await boundAddress.futureResult.get() }
    }

    public func run() async throws {
        let loops = Array(group.makeIterator())
        let health = LoopHealth(loops: loops, stallAfter: context.configuration.loopStallThreshold)
        let context = self.context
        let listener: Listener
        do {
            listener = try await Self.listen(loops: loops, health: health, context: context)
        } catch {
            boundAddress.fail(error)
            try? await group.shutdownGracefully()
            throw error
        }
        boundAddress.succeed(listener.localAddress)
        context.logger.info("listening", metadata: ["address": "\(listener.localAddress)", "path": "\(context.configuration.path)"])

        let (stopped, stop) = AsyncStream<Void>.makeStream()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for await _ in stopped {}
            } onGracefulShutdown: {
                listener.stop()
                stop.finish()
            }
        } onCancel: {
            listener.stop()
            stop.finish()
        }
        let abandoned = await finishAllSessions()
        await context.application.settle(timeout: context.configuration.shutdownTimeout)
        guard abandoned == 0 else {
            // A stalled loop never finishes a graceful shutdown: leave the group as it is.
            context.logger.error("shutdown abandoned sessions on stalled event loops",
                                 metadata: ["sessions": "\(abandoned)", "loops": "\(health.stalledCount)"])
            throw ShutdownError(abandonedSessions: abandoned)
        }
        try await group.shutdownGracefully()
    }

    /// Every live session hears `serverShutdown` on its own loop (disconnect and finish run for
    /// each socket), and the server waits until each transport has flushed its close packet and
    /// closed. Sessions whose loop does not get to it within the shutdown timeout are
    /// abandoned: their count is returned.
    private func finishAllSessions() async -> Int {
        context.shuttingDown.withLockedValue { $0 = true }
        let sessions = context.sessions.withLockedValue { Array($0.values) }
        context.logger.info("shutting down", metadata: ["sessions": "\(sessions.count)"])
        // Sockets kept for recovery end too: their plugins hear disconnect and finish, once.
        let away = context.recoverable.withLockedValue { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        let unfinished = ManagedAtomic<Int>(sessions.count)
        // Waited for as the sessions are: an isolated plugin hears their end before it stops.
        let open = ManagedAtomic<Int>(sessions.count + away.count)
        let (done, finished) = AsyncStream<Void>.makeStream()
        if sessions.isEmpty, away.isEmpty { finished.finish() }
        for socket in away {
            socket.eventLoop.execute {
                socket.endDetached(reason: .serverShutdown)
                if open.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 { finished.finish() }
            }
        }
        for session in sessions {
            session.eventLoop.execute {
                let closed = session.close(reason: .serverShutdown)
                unfinished.wrappingDecrement(ordering: .relaxed)
                closed.whenComplete { _ in
                    if open.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 { finished.finish() }
                }
            }
        }
        let timeout = context.configuration.shutdownTimeout
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in done {} }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return unfinished.load(ordering: .relaxed)
    }

    /// Where connections are accepted. With several loops, on a thread of its own
    /// (`Acceptor`), so that a stalled loop neither stops accepting nor gets new connections.
    /// With one loop there is nowhere else to send them, and a thread of its own would only
    /// cost a context switch per connection (a fifth of the connect rate on one core,
    /// measured), so that loop accepts, through NIO's `ServerBootstrap`.
    private enum Listener {
        case thread(Acceptor)
        case channel(Channel)

        var localAddress: SocketAddress {
            switch self {
            case .thread(let acceptor): return acceptor.localAddress
            case .channel(let channel): return channel.localAddress!
            }
        }

        func stop() {
            switch self {
            case .thread(let acceptor): acceptor.stop()
            case .channel(let channel): channel.close(promise: nil)
            }
        }
    }

    private static func listen(loops: [EventLoop], health: LoopHealth, context: ServerContext) async throws -> Listener {
        let configuration = context.configuration
        guard loops.count == 1 else {
            let acceptor = try Acceptor(host: configuration.host, port: configuration.port, backlog: 1024, health: health,
                                        loops: loops, logger: context.logger) { makeBootstrap(loop: $0, context: context) }
            acceptor.start()
            return .thread(acceptor)
        }
        let logger = context.logger
        let channel = try await ServerBootstrap(group: loops[0])
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(logger: logger))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.maxOutboundBytes / 4, high: configuration.maxOutboundBytes / 2))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try configureHTTP(channel: channel, context: context) }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        return .channel(channel)
    }

    private static func makeBootstrap(loop: EventLoop, context: ServerContext) -> ClientBootstrap {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: 16)
            // Unwritable past half of maxOutboundBytes: the WebSocket transport stops reading then,
            // and drops the client as a slow consumer past the whole of it.
            .channelOption(.writeBufferWaterMark, value: .init(
                low: context.configuration.maxOutboundBytes / 4, high: context.configuration.maxOutboundBytes / 2))
            // NIO keeps each connection's last read buffer for the next read: with its default
            // 2 KiB first size that is 2 KiB per idle client. Start small; it still grows (and
            // shrinks back) with what each connection reads.
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureHTTP(channel: channel, context: context)
                }
            }
    }

    /// The HTTP/1.1 pipeline, built by hand rather than with `configureHTTPServerPipeline` so
    /// that `EngineHTTPHandler` can find the handlers a WebSocket upgrade removes.
    static func configureHTTP(channel: Channel, context: ServerContext) throws {
        let sync = channel.pipeline.syncOperations
        typealias Name = EngineHTTPHandler.HandlerName
        try sync.addHandler(HTTPResponseEncoder(), name: Name.encoder)
        try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)), name: Name.decoder)
        try sync.addHandler(HTTPServerPipelineHandler(), name: Name.others[0])
        try sync.addHandler(HTTPServerProtocolErrorHandler(), name: Name.others[1])
        try sync.addHandler(EngineHTTPHandler(server: context))
    }

    // MARK: Out-of-band sending

    /// Emits to every socket of `namespace`, or to the subscribers of any of `channels`,
    /// except `excluding`. Encodes once; returns how many sockets it reached.
    @discardableResult
    public func emit(namespace: String = "/", event: String, _ arguments: [JSONValue], attachments: [ByteBuffer] = [],
                     channels: [String]? = nil, excluding: String? = nil) -> Int {
        context.emit(namespace: namespace, event: event, arguments, attachments: attachments, channels: channels, excluding: excluding)
    }

    public var statistics: ServerStatistics {
        ServerStatistics(sessions: context.sessions.withLockedValue { $0.count },
                         sockets: context.namespaces.mapValues(\.count),
                         disconnects: context.disconnects.snapshot)
    }

    /// Brings the metrics up to date (each loop adds what it counted, gauges are read) before an
    /// exporter reads them; without this they lag by up to a second.
    public func collectMetrics() async {
        await context.metrics?.collect(sessions: context.sessions.withLockedValue { Array($0.values) }, namespaces: context.namespaces)
    }

    /// The connected sockets (of one channel, when given; at most `limit` of them, any), each
    /// read on its own loop: one task per loop, not per socket. A loop that does not answer
    /// within a second (stalled) is left out.
    public func sockets(channel: String? = nil, limit: Int = .max) async -> [SocketSnapshot] {
        var byLoop: [ObjectIdentifier: (EventLoop, [Socket])] = [:]
        var taken = 0
        for name in context.namespaces.keys.sorted() where taken < limit {
            let registry = context.namespaces[name]!
            for socket in channel.map({ registry.subscribers(of: [$0]) }) ?? registry.allSockets {
                guard taken < limit else { break }
                byLoop[ObjectIdentifier(socket.eventLoop), default: (socket.eventLoop, [])].1.append(socket)
                taken += 1
            }
        }
        var snapshots: [SocketSnapshot] = []
        for (loop, sockets) in byLoop.values {
            if let read = await LoopQuery.ask(loop, { sockets.map(\.snapshot) }) { snapshots += read }
        }
        return snapshots.sorted { ($0.namespace, $0.connectedAt, $0.id) < ($1.namespace, $1.connectedAt, $1.id) }
    }

    /// Every channel of every namespace with its member count, across the cluster.
    public var channels: [ChannelCount] {
        context.namespaces.keys.sorted().flatMap { name in
            var counts = context.namespaces[name]!.channelCounts
            if let cluster = context.cluster {
                counts.merge(cluster.remoteChannelCounts(namespace: name), uniquingKeysWith: +)
            }
            return counts.sorted { $0.key < $1.key }.map { ChannelCount(namespace: name, channel: $0.key, members: $0.value) }
        }
    }

    /// The sockets of `channel` (nil: of the namespace) on every node, with their presence
    /// values; this process's first.
    public func presence(namespace: String = "/", channel: String?) -> [PresenceMember] {
        guard let registry = context.namespaces[namespace] else { return [] }
        let local = registry.members(channel: channel).sorted { $0.id < $1.id }
        guard let cluster = context.cluster else { return local }
        return local + cluster.remoteMembers(namespace: namespace, channel: channel)
            .sorted { ($0.node ?? "", $0.id) < ($1.node ?? "", $1.id) }
    }

    /// How many sockets of the cluster are in `channel` (nil: in the namespace) on other nodes.
    public func remoteCount(namespace: String = "/", channel: String?) -> Int {
        context.cluster?.remoteMembers(namespace: namespace, channel: channel).count ?? 0
    }

    /// Sets the presence value of a socket of this process (nil clears it): false when it is not
    /// connected here. At most 256 bytes, checked by the caller.
    public func setPresence(_ value: String?, socketID: String, namespace: String = "/") -> Bool {
        context.namespaces[namespace]?.setValue(value, of: socketID) ?? false
    }

    /// An event to one socket, on whichever node has it: false when none has.
    public func emit(toSocket id: String, namespace: String = "/", event: String, _ arguments: [JSONValue],
                     attachments: [ByteBuffer] = []) -> Bool {
        context.emit(toSocket: id, namespace: namespace, event: event, arguments, attachments: attachments)
    }

    /// Joins, leaves or disconnects a socket by id, on whichever node has it: false when none has.
    public func perform(_ operation: SocketOperation, onSocket id: String, namespace: String = "/") -> Bool {
        context.perform(operation, onSocket: id, namespace: namespace)
    }

    /// The connected socket with this id in `namespace`, if any.
    public func socket(id: String, namespace: String = "/") -> Socket? {
        context.namespaces[namespace]?.socket(id)
    }
}


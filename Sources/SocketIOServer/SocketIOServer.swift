import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import SocketIOCodec

/// The Socket.IO server: binds, serves until graceful shutdown, then finishes every socket.
///
/// A `Service`, so that `sio` (and tests) run it in a `ServiceGroup` that turns SIGINT/SIGTERM
/// into an orderly stop.
public final class SocketIOServer: Service, @unchecked Sendable {
    private let context: ServerContext
    private let group: MultiThreadedEventLoopGroup
    private let boundAddress: EventLoopPromise<SocketAddress>

    public init(configuration: SocketIOConfiguration, application: SocketIOApplication, logger: Logger = Logger(label: "sio")) {
        self.context = ServerContext(configuration: configuration, application: application, logger: logger)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        self.boundAddress = group.next().makePromise()
    }

    /// The address the server listens on, once it does (port 0 resolves here).
    public var localAddress: SocketAddress {
        get async throws { try await boundAddress.futureResult.get() }
    }

    public func run() async throws {
        let channel: Channel
        do {
            channel = try await makeBootstrap().bind(host: context.configuration.host, port: context.configuration.port).get()
        } catch {
            boundAddress.fail(error)
            try? await group.shutdownGracefully()
            throw error
        }
        let address = channel.localAddress!
        boundAddress.succeed(address)
        context.logger.info("listening", metadata: ["address": "\(address)", "path": "\(context.configuration.path)"])

        try await channel.serveUntilShutdown()
        await finishAllSessions()
        try await group.shutdownGracefully()
    }

    /// Every live session hears `serverShutdown` on its own loop, and its transports are given
    /// a moment to flush the close packets before the loops stop.
    private func finishAllSessions() async {
        context.shuttingDown.withLockedValue { $0 = true }
        let sessions = context.sessions.withLockedValue { Array($0.values) }
        context.logger.info("shutting down", metadata: ["sessions": "\(sessions.count)"])
        let closed = sessions.map { session in
            session.eventLoop.submit { session.close(reason: .serverShutdown) }
        }
        for future in closed { try? await future.get() }
        try? await Task.sleep(for: .milliseconds(100))
    }

    private func makeBootstrap() -> ServerBootstrap {
        let context = self.context
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // NIO keeps each connection's last read buffer for the next read: with its default
            // 2 KiB first size that is 2 KiB per idle client. Start small; it still grows (and
            // shrinks back) with what each connection reads.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureHTTP(channel: channel, context: context)
                }
            }
    }

    /// The HTTP/1.1 pipeline, built by hand rather than with `configureHTTPServerPipeline` so
    /// that the WebSocket upgrade handler can be re-armed before every request: NIO's upgrade
    /// handler only looks at the first request of a connection, and aiohttp (python-socketio's
    /// asyncio client) sends its upgrade on the keep-alive connection it polled on.
    private static func configureHTTP(channel: Channel, context: ServerContext) throws {
        let configuration = context.configuration
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let protocolErrors = HTTPServerProtocolErrorHandler()
        let makeUpgradeHandler = { (httpHandler: EngineHTTPHandler) -> HTTPServerUpgradeHandler in
            let upgrader = NIOWebSocketServerUpgrader(
                maxFrameSize: max(configuration.maxPayload, 16),
                automaticErrorHandling: true,
                shouldUpgrade: { channel, head in
                    Self.shouldUpgrade(channel: channel, head: head, context: context)
                },
                upgradePipelineHandler: { channel, head in
                    let request = HandshakeRequest(head: head, peer: channel.remoteAddress?.ipAddress ?? "", trustedProxies: configuration.trustedProxies)
                    let sid = request.queryParameter("sid")
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                maxAccumulatedFrameSize: configuration.maxPayload),
                            WebSocketTransportHandler(server: context, request: request, upgradingSID: sid),
                        ])
                    }
                })
            return HTTPServerUpgradeHandler(
                upgraders: [upgrader], httpEncoder: encoder, extraHTTPHandlers: [decoder, pipelining, protocolErrors],
                upgradeCompletionHandler: { ctx in ctx.pipeline.removeHandler(httpHandler, promise: nil) })
        }
        let httpHandler = EngineHTTPHandler(server: context, makeUpgradeHandler: makeUpgradeHandler)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(encoder)
        try sync.addHandler(decoder)
        try sync.addHandler(pipelining)
        try sync.addHandler(protocolErrors)
        try sync.addHandler(makeUpgradeHandler(httpHandler))
        try sync.addHandler(httpHandler)
    }

    /// Accepts a WebSocket only for the Engine.IO path with `EIO=4&transport=websocket`, and for
    /// an upgrade only while the session is still on long-polling; anything else falls through
    /// to the HTTP handler, which answers with the matching Engine.IO error.
    private static func shouldUpgrade(channel: Channel, head: HTTPRequestHead, context: ServerContext) -> EventLoopFuture<HTTPHeaders?> {
        let request = HandshakeRequest(head: head, peer: "", trustedProxies: [])
        let query = QueryString.parse(request.query)
        let enginePath = context.configuration.path
        guard request.path == enginePath || request.path + "/" == enginePath,
            query["EIO"] == "4", query["transport"] == "websocket"
        else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        guard let sid = query["sid"] else {
            return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
        }
        guard let session = context.session(sid) else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        return session.eventLoop.submit { session.canProbe ? HTTPHeaders() : nil }.hop(to: channel.eventLoop)
    }

    // MARK: Out-of-band sending

    /// Emits to every socket of `namespace`, or to the subscribers of any of `channels`,
    /// except `excluding`. Encodes once; returns how many sockets it reached.
    @discardableResult
    public func emit(namespace: String = "/", event: String, _ arguments: [JSONValue], attachments: [ByteBuffer] = [],
                     channels: [String]? = nil, excluding: String? = nil) -> Int {
        guard let registry = context.namespaces[namespace] else { return 0 }
        let recipients = channels.map { registry.subscribers(of: $0) } ?? registry.allSockets
        let packet = SocketIOPacket(
            kind: attachments.isEmpty ? .event : .binaryEvent, namespace: namespace,
            data: .array([.string(event)] + arguments), attachmentCount: attachments.count)
        let encoded = OutboundMessage(SocketIOConnection.enginePackets(packet, attachments: attachments))
        // The excluded sender is found once; recipients are then told apart by identity, not by
        // comparing 20-character ids a thousand times.
        let excluded = excluding.flatMap { registry.socket($0) }
        let callerLoop = MultiThreadedEventLoopGroup.currentEventLoop
        var count = 0
        for socket in recipients where socket !== excluded {
            socket.sendEncoded(encoded, callerLoop: callerLoop)
            count += 1
        }
        return count
    }

    /// The connected socket with this id in `namespace`, if any.
    public func socket(id: String, namespace: String = "/") -> SocketIOSocket? {
        context.namespaces[namespace]?.socket(id)
    }
}

